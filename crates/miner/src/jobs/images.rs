//! Images for jobs: renters upload OCI image-layout archives or name registry images, always
//! pinned by digest.
//!
//! ```text
//! POST /v1/images   signed; body = an OCI image-layout archive (tar), at most
//!                   `max_image_bytes` -> 200 {"digest": "sha256:..", "config": {..}}
//! ```
//!
//! An uploaded image is unpacked into the sandbox's image store
//! ([`unet_sandbox::image::ImageStore`]: blobs verified against their digests, layers
//! unpacked safely, cached by manifest digest) and granted to the uploading lease: a job
//! naming a bare `sha256:<hex>` runs only if its lease uploaded (or pulled) that image, so a
//! renter cannot use another renter's private image by guessing its digest. A job naming
//! `REGISTRY/REPO[:TAG]@sha256:<hex>` has the miner pull it ([`super::pull`]) with the digest
//! checked; a reference without a digest is refused.

use super::server::{json_ok, ApiError, Shared};
use axum::{body::Bytes, extract::State, http::HeaderMap, http::StatusCode, response::Response};
use std::{path::PathBuf, sync::Arc};
use unet_renter::job::ImageUploaded;
use unet_sandbox::image::{parse_digest, Image, ImageStore};

/// Default cap of an uploaded archive, bytes.
pub const DEFAULT_MAX_IMAGE_BYTES: usize = 512 << 20;

/// What a job's `image` names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ImageRef {
    /// `sha256:<hex>`: uploaded (or pulled) on this lease before.
    Digest(String),
    /// `REGISTRY/REPO[:TAG]@sha256:<hex>`.
    Registry {
        /// The reference before `@`.
        name: String,
        /// `sha256:<hex>`, lowercase.
        digest: String,
    },
}

impl ImageRef {
    /// Parses a job's `image`; a reference must end in `@sha256:<64 hex>`.
    pub fn parse(s: &str) -> Result<Self, String> {
        if s.len() > 512
            || s.bytes()
                .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
        {
            return Err("image reference too long or with spaces".into());
        }
        if let Some((name, d)) = s.rsplit_once('@') {
            let hex = parse_digest(d)?;
            if name.is_empty() {
                return Err(format!("image {s:?}: empty name"));
            }
            return Ok(Self::Registry {
                name: name.to_string(),
                digest: format!("sha256:{hex}"),
            });
        }
        if s.starts_with("sha256:") {
            return Ok(Self::Digest(format!("sha256:{}", parse_digest(s)?)));
        }
        Err(format!(
            "image {s:?} is not pinned: give sha256:<hex> or REGISTRY/REPO@sha256:<hex>"
        ))
    }

    /// The pinned digest.
    pub fn digest(&self) -> &str {
        match self {
            Self::Digest(d) | Self::Registry { digest: d, .. } => d,
        }
    }
}

fn grant_path(store: &ImageStore, lease: u64, digest: &str) -> Result<PathBuf, String> {
    let hex = parse_digest(digest)?;
    Ok(store.dir.join("leases").join(lease.to_string()).join(hex))
}

/// Records that lease `lease` may run image `digest`.
pub fn grant(store: &ImageStore, lease: u64, digest: &str) -> Result<(), String> {
    let p = grant_path(store, lease, digest)?;
    if let Some(d) = p.parent() {
        std::fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
    }
    std::fs::write(&p, b"").map_err(|e| format!("{}: {e}", p.display()))
}

/// Whether lease `lease` uploaded or pulled image `digest`.
pub fn granted(store: &ImageStore, lease: u64, digest: &str) -> bool {
    grant_path(store, lease, digest).is_ok_and(|p| p.is_file())
}

/// The image a job of lease `lease` runs on: granted and unpacked, or pulled now.
pub async fn resolve(
    store: ImageStore,
    lease: u64,
    r: &ImageRef,
    insecure: &[String],
) -> Result<Image, String> {
    match r {
        ImageRef::Digest(d) => {
            if !granted(&store, lease, d) {
                return Err(format!("image {d} was not uploaded on lease {lease}"));
            }
            let d = d.clone();
            tokio::task::spawn_blocking(move || store.unpack(&d))
                .await
                .map_err(|e| e.to_string())?
        }
        ImageRef::Registry { name, digest } => {
            let img = match store.get(digest)? {
                Some(img) => img,
                None => super::pull::pull(&store, name, digest, insecure).await?,
            };
            grant(&store, lease, digest)?;
            Ok(img)
        }
    }
}

/// `POST /v1/images`.
pub(super) async fn upload_handler(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (_, lease) = s
        .authenticate(&headers, "POST", "/v1/images", &body, true)
        .await?;
    let sb = s.cfg.sandbox.clone();
    let lease_id = lease.id;
    let img = tokio::task::spawn_blocking(move || {
        let store = sb.image_store()?;
        let img = store.import_archive(body.as_ref())?;
        grant(&store, lease_id, &img.digest)?;
        Ok::<_, String>(img)
    })
    .await
    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?
    .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_image", e))?;
    tracing::info!(lease = lease_id, digest = %img.digest, "image imported");
    Ok(json_ok(
        StatusCode::OK,
        &ImageUploaded {
            digest: img.digest,
            lease_id,
            config: serde_json::to_value(&img.config).unwrap_or_default(),
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_must_be_pinned_by_digest() {
        let h = "ab".repeat(32);
        assert_eq!(
            ImageRef::parse(&format!("sha256:{}", h.to_uppercase())).unwrap(),
            ImageRef::Digest(format!("sha256:{h}"))
        );
        assert_eq!(
            ImageRef::parse(&format!("127.0.0.1:22000/ex:1@sha256:{h}")).unwrap(),
            ImageRef::Registry {
                name: "127.0.0.1:22000/ex:1".into(),
                digest: format!("sha256:{h}")
            }
        );
        for bad in [
            "busybox:latest",
            "docker.io/library/busybox",
            "sha256:abc",
            "x@sha512:00",
            "@sha256:0000000000000000000000000000000000000000000000000000000000000000",
            "a b@sha256:0000000000000000000000000000000000000000000000000000000000000000",
        ] {
            assert!(ImageRef::parse(bad).is_err(), "{bad}");
        }
    }
}
