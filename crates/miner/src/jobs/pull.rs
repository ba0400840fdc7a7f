//! Pulls an image pinned by digest from an OCI registry with `oci-client`.
//!
//! The manifest is fetched by digest and stored only if its bytes hash to that digest (an
//! index is followed to the manifest for this platform, itself fetched by digest); each
//! blob it names is streamed to a temporary file, refused past its descriptor's size or the
//! store's cap, and stored only if it hashes to its digest. Nothing the registry says is
//! trusted beyond what the digest pins. Registries named in `insecure` are spoken to over
//! plain HTTP (a local test registry); all others over HTTPS.

use futures::StreamExt as _;
use oci_client::{
    client::{ClientConfig, ClientProtocol},
    manifest,
    secrets::RegistryAuth,
    Client, Reference,
};
use std::str::FromStr as _;
use tokio::io::AsyncWriteExt as _;
use unet_sandbox::image::{store::MAX_DOC_BYTES, Image, ImageStore};

/// Makes the temporary file of each blob download unique (two jobs may pull one blob).
static PULL_SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

const ACCEPT: &[&str] = &[
    manifest::OCI_IMAGE_MEDIA_TYPE,
    manifest::IMAGE_MANIFEST_MEDIA_TYPE,
    manifest::OCI_IMAGE_INDEX_MEDIA_TYPE,
    manifest::IMAGE_MANIFEST_LIST_MEDIA_TYPE,
];

fn client(insecure: &[String]) -> Client {
    Client::new(ClientConfig {
        protocol: ClientProtocol::HttpsExcept(insecure.to_vec()),
        ..Default::default()
    })
}

/// Fetches manifest `digest` of `name` and stores it (checked against `digest`).
async fn fetch_manifest(
    c: &Client,
    name: &str,
    digest: &str,
    store: &ImageStore,
) -> Result<(Reference, serde_json::Value), String> {
    let base = name.rsplit_once('@').map_or(name, |(n, _)| n);
    let r = Reference::from_str(&format!("{base}@{digest}"))
        .map_err(|e| format!("image reference {base}@{digest}: {e}"))?;
    let (bytes, _) = c
        .pull_manifest_raw(&r, &RegistryAuth::Anonymous, ACCEPT)
        .await
        .map_err(|e| format!("pulling manifest {digest} of {base}: {e}"))?;
    if bytes.len() as u64 > MAX_DOC_BYTES {
        return Err(format!(
            "manifest {digest} is larger than {MAX_DOC_BYTES} bytes"
        ));
    }
    let (s, b) = (store.clone(), bytes.clone());
    let d = digest.to_string();
    tokio::task::spawn_blocking(move || s.put_blob(&d, b.as_ref(), MAX_DOC_BYTES))
        .await
        .map_err(|e| e.to_string())??;
    let v = serde_json::from_slice(&bytes).map_err(|e| format!("manifest {digest}: {e}"))?;
    Ok((r, v))
}

/// Pulls image `name@digest` into `store` and unpacks it.
pub async fn pull(
    store: &ImageStore,
    name: &str,
    digest: &str,
    insecure: &[String],
) -> Result<Image, String> {
    let c = client(insecure);
    let (mut r, mut m) = fetch_manifest(&c, name, digest, store).await?;
    let mut manifest_digest = digest.to_string();
    if m.get("manifests").is_some() && m.get("config").is_none() {
        let arch = unet_sandbox::image::store::host_arch();
        let child = m["manifests"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|d| d["platform"]["os"] == "linux" && d["platform"]["architecture"] == arch)
            .and_then(|d| d["digest"].as_str())
            .ok_or_else(|| format!("{name}@{digest} has no image for linux/{arch}"))?
            .to_string();
        unet_sandbox::image::parse_digest(&child)?;
        (r, m) = fetch_manifest(&c, name, &child, store).await?;
        manifest_digest = child;
    }
    let max = store.limits.max_blob_bytes;
    let mut total: u64 = 0;
    let mut blobs = Vec::new();
    if let Some(cfg) = m.get("config") {
        blobs.push(cfg.clone());
    }
    blobs.extend(m["layers"].as_array().cloned().unwrap_or_default());
    for b in blobs {
        let d = b["digest"]
            .as_str()
            .ok_or("a manifest descriptor without digest")?
            .to_string();
        let want = b["size"]
            .as_u64()
            .ok_or("a manifest descriptor without size")?;
        unet_sandbox::image::parse_digest(&d)?;
        total = total.saturating_add(want);
        if total > max {
            return Err(format!("the image's blobs exceed {max} bytes"));
        }
        if store.has_blob(&d) {
            continue;
        }
        let mut stream = c
            .pull_blob_stream(&r, d.as_str())
            .await
            .map_err(|e| format!("pulling blob {d}: {e}"))?
            .stream;
        let tmp = store.dir.join("tmp").join(format!(
            "pull-{}-{}",
            d.trim_start_matches("sha256:"),
            PULL_SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let mut f = tokio::fs::File::create(&tmp)
            .await
            .map_err(|e| format!("{}: {e}", tmp.display()))?;
        let mut n: u64 = 0;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| format!("pulling blob {d}: {e}"))?;
            n += chunk.len() as u64;
            if n > want {
                let _ = tokio::fs::remove_file(&tmp).await;
                return Err(format!(
                    "blob {d} is larger than its descriptor's {want} bytes"
                ));
            }
            f.write_all(&chunk)
                .await
                .map_err(|e| format!("{}: {e}", tmp.display()))?;
        }
        f.flush().await.map_err(|e| e.to_string())?;
        drop(f);
        let s = store.clone();
        let t = tmp.clone();
        let res = tokio::task::spawn_blocking(move || {
            let f = std::fs::File::open(&t).map_err(|e| format!("{}: {e}", t.display()))?;
            s.put_blob(&d, f, want)
        })
        .await
        .map_err(|e| e.to_string());
        let _ = tokio::fs::remove_file(&tmp).await;
        res??;
    }
    let s = store.clone();
    tokio::task::spawn_blocking(move || s.unpack(&manifest_digest))
        .await
        .map_err(|e| e.to_string())?
}

/// Pushes a built image (its blobs, then its manifest by digest) to `name` (for tests and
/// `unet job push-image`-style tooling; the registry is trusted for nothing).
pub async fn push(
    built: &unet_sandbox::image::build::BuiltImage,
    name: &str,
    insecure: &[String],
) -> Result<String, String> {
    let c = client(insecure);
    let r = Reference::from_str(name).map_err(|e| format!("image reference {name}: {e}"))?;
    c.store_auth_if_needed(r.resolve_registry(), &RegistryAuth::Anonymous)
        .await;
    let cfg_digest = format!(
        "sha256:{}",
        hex::encode(unet_types::sha256(&[&built.config]))
    );
    let mut blobs = vec![(cfg_digest, built.config.clone())];
    for (d, _, b) in &built.layers {
        blobs.push((d.clone(), b.clone()));
    }
    for (d, b) in blobs {
        c.push_blob(&r, b, &d)
            .await
            .map_err(|e| format!("pushing blob {d}: {e}"))?;
    }
    let ct = axum::http::HeaderValue::from_static(manifest::OCI_IMAGE_MEDIA_TYPE);
    c.push_manifest_raw(&r, built.manifest.clone(), ct)
        .await
        .map_err(|e| format!("pushing the manifest: {e}"))
}

/// The digest a registry currently gives tag reference `name` (the renter pins it before
/// submitting; the miner then pulls exactly that).
pub async fn resolve_digest(name: &str, insecure: &[String]) -> Result<String, String> {
    let c = client(insecure);
    let r = Reference::from_str(name).map_err(|e| format!("image reference {name}: {e}"))?;
    let d = c
        .fetch_manifest_digest(&r, &RegistryAuth::Anonymous)
        .await
        .map_err(|e| format!("resolving {name}: {e}"))?;
    unet_sandbox::image::parse_digest(&d)?;
    Ok(d)
}
