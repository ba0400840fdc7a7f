//! `GET /v1/volume` (signed, the lease's renter): a tar of the lease's volume, while the lease
//! serves and during its grace period after it ended ([`crate::jobs::volumes`]). The volume
//! stays mounted (so the sweep cannot remove it) until the download ends; the tar streams, so
//! a volume of any size costs the miner a bounded buffer.

use super::{ApiError, Shared};
use crate::jobs::volumes;
use axum::{
    body::{Body, Bytes},
    extract::State,
    http::{header, HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};
use std::{io::Write, sync::Arc};

/// Hands what the tar writer writes to the response body.
struct ToBody(tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>);

impl Write for ToBody {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .blocking_send(Ok(Bytes::copy_from_slice(buf)))
            .map_err(|_| std::io::Error::other("the download was abandoned"))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

pub(super) async fn volume_handler(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (_, lease) = s
        .authenticate(&headers, "GET", "/v1/volume", &[], false)
        .await?;
    let sb = s.cfg.sandbox.clone();
    if let Some(end) = lease.ended_at() {
        let until = end.saturating_add(sb.volume_grace_blocks);
        if lease.height >= until {
            return Err(ApiError::new(
                StatusCode::GONE,
                "volume_gone",
                format!(
                    "lease {} ended at height {end}; its volume was kept until {until} (chain at {})",
                    lease.id, lease.height
                ),
            ));
        }
    }
    if !sb.volume_image(lease.id).exists() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "no_volume",
            format!(
                "lease {} has no volume on this miner (no workload of it ran here)",
                lease.id
            ),
        ));
    }
    let id = lease.id;
    let mounted = {
        let sb = sb.clone();
        tokio::task::spawn_blocking(move || sb.mount_volume(id))
            .await
            .map_err(|e| {
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
            })?
            .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e))?
    };
    let (tx, rx) = tokio::sync::mpsc::channel(8);
    tokio::task::spawn_blocking(move || {
        let out = std::io::BufWriter::with_capacity(64 << 10, ToBody(tx.clone()));
        if let Err(e) = volumes::write_tar(mounted.dir(), out) {
            // The body ends with an error: the client sees a broken transfer, not a short tar.
            let _ = tx.blocking_send(Err(e));
        }
        drop(mounted);
    });
    let body = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (chunk, rx))
    });
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/x-tar")],
        Body::from_stream(body),
    )
        .into_response())
}
