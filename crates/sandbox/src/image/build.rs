//! Writes OCI image-layout archives: the example image of `unet job example-image` (the
//! static busybox, whose `/bin/sh` runs `echo`) and any image a test needs.

use super::store::host_arch;
use serde_json::json;
use sha2::{Digest as _, Sha256};
use std::path::Path;

/// One layer to put in an image: an uncompressed tar, stored gzip-compressed or not.
pub struct LayerBlob {
    /// The layer's uncompressed tar (its digest is the config's diff id).
    pub tar: Vec<u8>,
    /// Store the blob gzip-compressed (`tar+gzip` media type) rather than as the plain tar.
    pub gzip: bool,
}

/// An image archive and the digest of its manifest (`sha256:<hex>`).
pub struct BuiltImage {
    /// The OCI image-layout tar (`oci-layout`, `index.json`, `blobs/sha256/...`).
    pub archive: Vec<u8>,
    /// `sha256:<hex>` of the manifest: the digest a job pins.
    pub digest: String,
    /// The blobs by digest: manifest, config, layers (what a registry push sends).
    pub manifest: Vec<u8>,
    /// The config blob (architecture, os, `config`, diff ids).
    pub config: Vec<u8>,
    /// The layer blobs as stored: (digest `sha256:<hex>`, media type, bytes).
    pub layers: Vec<(String, String, Vec<u8>)>,
}

fn digest_of(b: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(b)))
}

fn add_file(b: &mut tar::Builder<Vec<u8>>, path: &str, data: &[u8]) -> Result<(), String> {
    let mut h = tar::Header::new_ustar();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mtime(0);
    b.append_data(&mut h, path, data).map_err(|e| e.to_string())
}

/// An OCI image-layout archive of `layers` with `config` (the image config's `config`
/// object: `Cmd`, `Env`, ...).
pub fn image_archive(
    layers: &[LayerBlob],
    config: serde_json::Value,
) -> Result<BuiltImage, String> {
    let mut layer_blobs = Vec::new();
    let mut diff_ids = Vec::new();
    for l in layers {
        diff_ids.push(digest_of(&l.tar));
        let (blob, mt) = if l.gzip {
            use std::io::Write;
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            enc.write_all(&l.tar).map_err(|e| e.to_string())?;
            (
                enc.finish().map_err(|e| e.to_string())?,
                "application/vnd.oci.image.layer.v1.tar+gzip",
            )
        } else {
            (l.tar.clone(), "application/vnd.oci.image.layer.v1.tar")
        };
        layer_blobs.push((digest_of(&blob), mt.to_string(), blob));
    }
    let cfg = serde_json::to_vec(&json!({
        "architecture": host_arch(),
        "os": "linux",
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }))
    .map_err(|e| e.to_string())?;
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": digest_of(&cfg),
            "size": cfg.len(),
        },
        "layers": layer_blobs.iter().map(|(d, mt, b)| json!({
            "mediaType": mt, "digest": d, "size": b.len(),
        })).collect::<Vec<_>>(),
    }))
    .map_err(|e| e.to_string())?;
    let digest = digest_of(&manifest);
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": digest,
            "size": manifest.len(),
            "platform": {"architecture": host_arch(), "os": "linux"},
        }],
    }))
    .map_err(|e| e.to_string())?;
    let mut b = tar::Builder::new(Vec::new());
    add_file(&mut b, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    add_file(&mut b, "index.json", &index)?;
    let mut blobs: Vec<(String, &[u8])> =
        vec![(digest.clone(), &manifest), (digest_of(&cfg), &cfg)];
    for (d, _, blob) in &layer_blobs {
        blobs.push((d.clone(), blob));
    }
    for (d, data) in blobs {
        let hex = d.trim_start_matches("sha256:");
        add_file(&mut b, &format!("blobs/sha256/{hex}"), data)?;
    }
    let archive = b.into_inner().map_err(|e| e.to_string())?;
    Ok(BuiltImage {
        archive,
        digest,
        manifest,
        config: cfg,
        layers: layer_blobs,
    })
}

/// A layer tar with the static busybox as `/bin/busybox` and `/bin/<applet>` symlinks
/// for `sh`, `echo`, `cat`, `ls`, `id`, `env`, `sleep`, `httpd`, `nc`, and `/etc/passwd`.
pub fn busybox_layer(busybox: &Path) -> Result<Vec<u8>, String> {
    let bin = std::fs::read(busybox).map_err(|e| format!("{}: {e}", busybox.display()))?;
    if !crate::rootfs::is_static_elf(&bin) {
        return Err(format!("{} is not a static binary", busybox.display()));
    }
    let mut b = tar::Builder::new(Vec::new());
    for d in ["bin/", "etc/", "work/", "tmp/"] {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o755);
        h.set_size(0);
        h.set_mtime(0);
        b.append_data(&mut h, d, std::io::empty())
            .map_err(|e| e.to_string())?;
    }
    let mut h = tar::Header::new_ustar();
    h.set_size(bin.len() as u64);
    h.set_mode(0o755);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mtime(0);
    b.append_data(&mut h, "bin/busybox", bin.as_slice())
        .map_err(|e| e.to_string())?;
    for a in [
        "sh", "echo", "cat", "ls", "id", "env", "sleep", "httpd", "nc", "head", "wc", "dd",
    ] {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_mode(0o777);
        h.set_size(0);
        h.set_mtime(0);
        b.append_link(&mut h, format!("bin/{a}"), "busybox")
            .map_err(|e| e.to_string())?;
    }
    add_file(&mut b, "etc/passwd", b"root:x:0:0:root:/work:/bin/sh\n")?;
    b.into_inner().map_err(|e| e.to_string())
}

/// The example image: busybox, `Cmd` = `/bin/sh -c 'echo hello from the example image'`.
pub fn example_image(busybox: &Path) -> Result<BuiltImage, String> {
    image_archive(
        &[LayerBlob {
            tar: busybox_layer(busybox)?,
            gzip: true,
        }],
        json!({
            "Cmd": ["/bin/sh", "-c", "echo hello from the example image"],
            "Env": ["PATH=/bin"],
            "WorkingDir": "/work",
        }),
    )
}
