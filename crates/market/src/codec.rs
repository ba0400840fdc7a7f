//! Small codec helpers shared by the market types.

use bytes::BufMut;
use commonware_codec::{EncodeSize, Error as CodecError, RangeCfg, Read, Write};

pub(crate) fn write_str(s: &str, buf: &mut impl BufMut) {
    s.as_bytes().write(buf);
}

pub(crate) fn str_size(s: &str) -> usize {
    s.as_bytes().encode_size()
}

pub(crate) fn read_str(
    buf: &mut impl commonware_codec::Buf,
    max: usize,
    what: &'static str,
) -> Result<String, CodecError> {
    let bytes = Vec::<u8>::read_cfg(buf, &(RangeCfg::from(..=max), ()))?;
    String::from_utf8(bytes).map_err(|_| CodecError::Invalid(what, "not utf-8"))
}
