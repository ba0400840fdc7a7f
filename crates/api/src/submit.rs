//! `POST /txs`: the binary form of `unet_sendTransactions`, for senders of many transactions.
//!
//! The request body (`Content-Type: application/octet-stream`) is a sequence of frames, one
//! per transaction: its encoded length as 4 bytes big-endian, then the encoded signed
//! transaction. At most [`MAX_SEND_BATCH`] frames. The reply is what `unet_sendTransactions`
//! returns, as JSON: one [`SendOutcome`](crate::chain::SendOutcome) per frame, in order (a
//! frame whose bytes do not decode gets an outcome without a hash, and does not sink the
//! others). A body that does not split into frames is refused whole, with HTTP 400 and
//! `{"error": RpcError}`; a client over its rate gets HTTP 429 and the same shape.
//!
//! It saves both sides the hex and JSON of the request, which is most of what a batch costs
//! to carry.

use crate::params::MAX_SEND_BATCH;

/// The path of the binary submission endpoint.
pub const SUBMIT_PATH: &str = "/txs";

/// The request body for these encoded transactions.
pub fn encode_submission<T: AsRef<[u8]>>(txs: &[T]) -> Vec<u8> {
    let mut body = Vec::with_capacity(txs.iter().map(|t| 4 + t.as_ref().len()).sum());
    for t in txs {
        let t = t.as_ref();
        let len = u32::try_from(t.len()).unwrap_or(u32::MAX);
        body.extend_from_slice(&len.to_be_bytes());
        body.extend_from_slice(t);
    }
    body
}

/// Splits a request body into its transactions' encodings (not yet decoded): an error names
/// the first frame that is cut short, or too many frames.
pub fn decode_submission(body: &[u8]) -> Result<Vec<&[u8]>, String> {
    let mut txs = Vec::new();
    let mut rest = body;
    while !rest.is_empty() {
        if txs.len() == MAX_SEND_BATCH {
            return Err(format!("at most {MAX_SEND_BATCH} transactions per call"));
        }
        let Some((len, after)) = rest.split_first_chunk::<4>() else {
            return Err(format!("frame {} has a cut length", txs.len()));
        };
        let len = u32::from_be_bytes(*len) as usize;
        if after.len() < len {
            return Err(format!(
                "frame {} says {len} bytes, {} remain",
                txs.len(),
                after.len()
            ));
        }
        let (tx, after) = after.split_at(len);
        txs.push(tx);
        rest = after;
    }
    if txs.is_empty() {
        return Err("no transactions".into());
    }
    Ok(txs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip() {
        let txs: Vec<Vec<u8>> = vec![vec![1, 2, 3], vec![], vec![9; 300]];
        let body = encode_submission(&txs);
        assert_eq!(body.len(), 3 * 4 + 303);
        let back = decode_submission(&body).unwrap();
        assert_eq!(back, txs.iter().map(Vec::as_slice).collect::<Vec<_>>());
    }

    /// Hostile bodies are refused with a reason, never a panic: empty, a cut length, a length
    /// past the end (including u32::MAX), and one frame more than the bound.
    #[test]
    fn malformed_bodies_are_refused() {
        assert!(decode_submission(&[]).is_err());
        assert!(decode_submission(&[0, 0, 1])
            .unwrap_err()
            .contains("cut length"));
        let mut past = encode_submission(&[vec![7u8; 10]]);
        past.truncate(past.len() - 1);
        assert!(decode_submission(&past)
            .unwrap_err()
            .contains("says 10 bytes"));
        let huge = [0xff, 0xff, 0xff, 0xff, 1];
        assert!(decode_submission(&huge).is_err());
        let many = encode_submission(&vec![vec![1u8]; MAX_SEND_BATCH + 1]);
        assert!(decode_submission(&many).unwrap_err().contains("at most"));
        let bound = encode_submission(&vec![vec![1u8]; MAX_SEND_BATCH]);
        assert_eq!(decode_submission(&bound).unwrap().len(), MAX_SEND_BATCH);
    }
}
