//! The image store: content-addressed blobs and unpacked roots, keyed by the image's
//! manifest digest.
//!
//! ```text
//! <dir>/blobs/sha256/<hex>        every blob, verified against its name when written
//! <dir>/images/<hex>/rootfs/      the unpacked root (read-only to workloads)
//! <dir>/images/<hex>/image.json   the parts of the image config a workload uses
//! ```
//!
//! An image comes in either as an OCI image-layout archive ([`ImageStore::import_archive`])
//! or blob by blob from a registry ([`ImageStore::put_blob`] then
//! [`ImageStore::unpack`]). Either way the manifest is found by its digest, every blob it
//! names is checked against its digest and size, and the layers are unpacked with
//! [`super::unpack`] into a fresh directory renamed into place when complete.

use super::unpack::{self, Compression, UnpackLimits, Usage};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use std::{
    io::{Read, Write},
    path::{Path, PathBuf},
    sync::atomic::{AtomicU64, Ordering},
};

/// Largest manifest, index or config document accepted, bytes.
pub const MAX_DOC_BYTES: u64 = 4 << 20;

/// Caps of one image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImageLimits {
    /// Sum of the blobs as stored (compressed layers, config, manifest), bytes.
    pub max_blob_bytes: u64,
    /// Layers of one image.
    pub max_layers: usize,
    /// Caps on what the layers unpack to.
    pub unpack: UnpackLimits,
}

impl Default for ImageLimits {
    fn default() -> Self {
        Self {
            max_blob_bytes: 2 << 30,
            max_layers: 128,
            unpack: UnpackLimits::default(),
        }
    }
}

/// An OCI content descriptor (the fields used here).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// `mediaType`; empty when the document omits it.
    #[serde(default)]
    pub media_type: String,
    /// `sha256:<hex>` of the content.
    pub digest: String,
    /// Size of the content, bytes (checked against the blob).
    pub size: u64,
    /// For an index entry: the platform the manifest is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
}

/// A descriptor's platform.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Platform {
    /// CPU architecture, in Go's naming (`amd64`, `arm64`).
    pub architecture: String,
    /// Operating system (`linux`).
    pub os: String,
}

#[derive(Deserialize)]
struct Index {
    manifests: Vec<Descriptor>,
}

#[derive(Deserialize)]
struct Manifest {
    #[serde(default, rename = "mediaType")]
    media_type: String,
    config: Option<Descriptor>,
    #[serde(default)]
    layers: Vec<Descriptor>,
    #[serde(default)]
    manifests: Vec<Descriptor>,
}

/// The parts of an image's config a workload uses.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageConfig {
    /// `Entrypoint`: argv prefix that always comes before the command.
    #[serde(default)]
    pub entrypoint: Vec<String>,
    /// `Cmd`: the default command when a job gives none.
    #[serde(default)]
    pub cmd: Vec<String>,
    /// `KEY=VALUE` pairs.
    #[serde(default)]
    pub env: Vec<String>,
    /// `WorkingDir`: the directory the command starts in; None (also when empty): the
    /// runner's default (the miner uses `/work`).
    #[serde(default)]
    pub working_dir: Option<String>,
    /// `uid[:gid]`, numeric (names are refused: the root has no trusted `/etc/passwd`).
    #[serde(default)]
    pub user: Option<String>,
    /// TCP ports the image declares.
    #[serde(default)]
    pub exposed_ports: Vec<u16>,
}

#[derive(Deserialize, Default)]
struct RawConfigDoc {
    #[serde(default)]
    architecture: String,
    #[serde(default)]
    os: String,
    #[serde(default)]
    config: Option<RawConfig>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct RawConfig {
    #[serde(default)]
    entrypoint: Option<Vec<String>>,
    #[serde(default)]
    cmd: Option<Vec<String>>,
    #[serde(default)]
    env: Option<Vec<String>>,
    #[serde(default)]
    working_dir: Option<String>,
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    exposed_ports: Option<serde_json::Map<String, serde_json::Value>>,
}

impl ImageConfig {
    /// The user to run as: `(uid, gid)`.
    pub fn uid_gid(&self) -> Result<(u32, u32), String> {
        let Some(u) = self.user.as_deref().filter(|u| !u.is_empty()) else {
            return Ok((0, 0));
        };
        let (a, b) = u.split_once(':').unwrap_or((u, u));
        let num = |s: &str| {
            s.parse::<u32>()
                .map_err(|_| format!("image user {u:?}: only numeric uid[:gid] is supported"))
        };
        Ok((num(a)?, num(b)?))
    }
}

/// An image ready to run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Image {
    /// `sha256:<hex>` of the manifest.
    pub digest: String,
    /// The unpacked root file system (mounted read-only as the container's `/`).
    pub rootfs: PathBuf,
    /// The parts of the image config a workload uses.
    pub config: ImageConfig,
}

/// Splits `sha256:<64 hex>` into the lowercase hex; anything else is refused.
pub fn parse_digest(d: &str) -> Result<String, String> {
    let hex = d
        .strip_prefix("sha256:")
        .ok_or_else(|| format!("digest {d:?} is not sha256:<hex>"))?;
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("digest {d:?} is not sha256:<64 hex digits>"));
    }
    Ok(hex.to_ascii_lowercase())
}

static TMP_SEQ: AtomicU64 = AtomicU64::new(0);

/// Blobs and unpacked images under one directory.
#[derive(Clone, Debug)]
pub struct ImageStore {
    /// Root of the store: `blobs/sha256/`, `images/` (unpacked roots) and `tmp/`.
    pub dir: PathBuf,
    /// Caps applied to every image imported or pulled into this store.
    pub limits: ImageLimits,
}

fn io(what: &Path) -> impl Fn(std::io::Error) -> String + '_ {
    move |e| format!("{}: {e}", what.display())
}

impl ImageStore {
    /// A store at `dir` (created, mode 0711 so that runc can reach the roots from inside
    /// a user namespace).
    pub fn open(dir: &Path, limits: ImageLimits) -> Result<Self, String> {
        use std::os::unix::fs::PermissionsExt;
        for d in [
            dir.to_path_buf(),
            dir.join("blobs/sha256"),
            dir.join("images"),
            dir.join("tmp"),
        ] {
            std::fs::create_dir_all(&d).map_err(io(&d))?;
        }
        for d in [dir.to_path_buf(), dir.join("images")] {
            std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o711)).map_err(io(&d))?;
        }
        for d in [dir.join("blobs"), dir.join("tmp")] {
            std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o700)).map_err(io(&d))?;
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            limits,
        })
    }

    fn blob_path(&self, hex: &str) -> PathBuf {
        self.dir.join("blobs/sha256").join(hex)
    }

    fn tmp_path(&self, what: &str) -> PathBuf {
        let n = TMP_SEQ.fetch_add(1, Ordering::Relaxed);
        self.dir
            .join("tmp")
            .join(format!("{what}-{}-{n}", std::process::id()))
    }

    /// Whether blob `digest` is stored.
    pub fn has_blob(&self, digest: &str) -> bool {
        parse_digest(digest).is_ok_and(|h| self.blob_path(&h).is_file())
    }

    /// Stores a blob read from `r`, which must hash to `digest` and be at most `max` bytes.
    /// Returns its size.
    pub fn put_blob(&self, digest: &str, r: impl Read, max: u64) -> Result<u64, String> {
        let hex = parse_digest(digest)?;
        let tmp = self.tmp_path("blob");
        let res = (|| {
            let mut f = std::fs::File::create(&tmp).map_err(io(&tmp))?;
            let mut h = Sha256::new();
            let mut n: u64 = 0;
            let mut r = r.take(max.saturating_add(1));
            let mut buf = vec![0u8; 64 << 10];
            loop {
                let k = r
                    .read(&mut buf)
                    .map_err(|e| format!("blob {digest}: {e}"))?;
                if k == 0 {
                    break;
                }
                n += k as u64;
                if n > max {
                    return Err(format!("blob {digest} is larger than {max} bytes"));
                }
                h.update(&buf[..k]);
                f.write_all(&buf[..k]).map_err(io(&tmp))?;
            }
            let got = hex::encode(h.finalize());
            if got != hex {
                return Err(format!("blob {digest} has digest sha256:{got}: refused"));
            }
            f.sync_all().map_err(io(&tmp))?;
            std::fs::rename(&tmp, self.blob_path(&hex)).map_err(io(&tmp))?;
            Ok(n)
        })();
        if res.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        res
    }

    fn read_doc(&self, d: &Descriptor) -> Result<Vec<u8>, String> {
        let hex = parse_digest(&d.digest)?;
        if d.size > MAX_DOC_BYTES {
            return Err(format!("{} of {} bytes is too large", d.digest, d.size));
        }
        let p = self.blob_path(&hex);
        let b = std::fs::read(&p).map_err(|e| format!("blob {}: {e}", d.digest))?;
        if b.len() as u64 != d.size {
            return Err(format!(
                "blob {} is {} bytes, its descriptor says {}",
                d.digest,
                b.len(),
                d.size
            ));
        }
        Ok(b)
    }

    /// Imports an OCI image-layout archive (a tar of `oci-layout`, `index.json` and
    /// `blobs/sha256/*`), then unpacks the image its index names (for an index with several,
    /// the one for this machine's platform).
    pub fn import_archive(&self, archive: impl Read) -> Result<Image, String> {
        let mut ar = tar::Archive::new(archive);
        let mut index: Option<Vec<u8>> = None;
        let mut layout = false;
        let mut total: u64 = 0;
        let max = self.limits.max_blob_bytes;
        for e in ar.entries().map_err(|e| format!("archive: {e}"))? {
            let mut e = e.map_err(|e| format!("archive: {e}"))?;
            let path = e.path_bytes().into_owned();
            let comps = unpack::components(&path)?;
            let names: Vec<&[u8]> = comps.iter().map(Vec::as_slice).collect();
            let regular = e.header().entry_type().is_file();
            match names.as_slice() {
                [b"index.json"] if regular => {
                    if e.size() > MAX_DOC_BYTES {
                        return Err("index.json is too large".into());
                    }
                    let mut v = Vec::new();
                    e.read_to_end(&mut v)
                        .map_err(|e| format!("index.json: {e}"))?;
                    index = Some(v);
                }
                [b"oci-layout"] if regular => layout = true,
                [b"blobs", b"sha256", hex] if regular => {
                    let hex = String::from_utf8_lossy(hex).into_owned();
                    total = total.saturating_add(e.size());
                    if total > max {
                        return Err(format!("the image's blobs exceed {max} bytes"));
                    }
                    self.put_blob(&format!("sha256:{hex}"), &mut e, max)?;
                }
                // Directories, and extra files some tools add (docker's manifest.json).
                _ => {}
            }
        }
        if !layout {
            return Err("not an OCI image layout: no oci-layout file".into());
        }
        let index = index.ok_or("not an OCI image layout: no index.json")?;
        let index: Index =
            serde_json::from_slice(&index).map_err(|e| format!("index.json: {e}"))?;
        let chosen = self.choose(&index.manifests, 0)?;
        self.unpack(&chosen.digest)
    }

    /// The image manifest among `list` for this platform (following nested indexes).
    fn choose(&self, list: &[Descriptor], depth: usize) -> Result<Descriptor, String> {
        if depth > 2 {
            return Err("image indexes nested too deep".into());
        }
        let arch = host_arch();
        let pick = match list {
            [] => return Err("the index names no image".into()),
            [one] => one.clone(),
            many => many
                .iter()
                .find(|d| {
                    d.platform
                        .as_ref()
                        .is_some_and(|p| p.os == "linux" && p.architecture == arch)
                })
                .cloned()
                .ok_or_else(|| format!("the index has no image for linux/{arch}"))?,
        };
        let m: Manifest = serde_json::from_slice(&self.read_doc(&pick)?)
            .map_err(|e| format!("manifest {}: {e}", pick.digest))?;
        if m.media_type.contains("index")
            || m.media_type.contains("manifest.list")
            || (m.config.is_none() && !m.manifests.is_empty())
        {
            return self.choose(&m.manifests, depth + 1);
        }
        Ok(pick)
    }

    /// The image `digest` if it is unpacked already.
    pub fn get(&self, digest: &str) -> Result<Option<Image>, String> {
        let hex = parse_digest(digest)?;
        let dir = self.dir.join("images").join(&hex);
        let cfg = dir.join("image.json");
        if !cfg.is_file() {
            return Ok(None);
        }
        let text = std::fs::read(&cfg).map_err(io(&cfg))?;
        let config =
            serde_json::from_slice(&text).map_err(|e| format!("{}: {e}", cfg.display()))?;
        Ok(Some(Image {
            digest: format!("sha256:{hex}"),
            rootfs: dir.join("rootfs"),
            config,
        }))
    }

    /// The manifest `digest` as stored (for a registry pull, which fetches the blobs it
    /// names).
    pub fn manifest_blobs(&self, digest: &str, size: u64) -> Result<Vec<Descriptor>, String> {
        let d = Descriptor {
            media_type: String::new(),
            digest: digest.to_string(),
            size,
            platform: None,
        };
        let m: Manifest = serde_json::from_slice(&self.read_doc(&d)?)
            .map_err(|e| format!("manifest {digest}: {e}"))?;
        let mut v: Vec<Descriptor> = m.config.into_iter().collect();
        v.extend(m.layers);
        Ok(v)
    }

    /// Unpacks the image whose manifest blob `digest` is stored (with its config and
    /// layers), or returns it when already unpacked.
    pub fn unpack(&self, digest: &str) -> Result<Image, String> {
        if let Some(img) = self.get(digest)? {
            return Ok(img);
        }
        let hex = parse_digest(digest)?;
        let size = std::fs::metadata(self.blob_path(&hex))
            .map_err(|e| format!("manifest {digest}: {e}"))?
            .len();
        let mdesc = Descriptor {
            media_type: String::new(),
            digest: digest.to_string(),
            size,
            platform: None,
        };
        let m: Manifest = serde_json::from_slice(&self.read_doc(&mdesc)?)
            .map_err(|e| format!("manifest {digest}: {e}"))?;
        let cdesc = m
            .config
            .ok_or_else(|| format!("{digest} is not an image manifest"))?;
        if m.layers.len() > self.limits.max_layers {
            return Err(format!("more than {} layers", self.limits.max_layers));
        }
        let raw: RawConfigDoc = serde_json::from_slice(&self.read_doc(&cdesc)?)
            .map_err(|e| format!("image config: {e}"))?;
        if !raw.os.is_empty() && raw.os != "linux" {
            return Err(format!("the image is for {}, not linux", raw.os));
        }
        if !raw.architecture.is_empty() && raw.architecture != host_arch() {
            return Err(format!(
                "the image is for {}, this machine is {}",
                raw.architecture,
                host_arch()
            ));
        }
        let c = raw.config.unwrap_or_default();
        let mut exposed_ports = Vec::new();
        for k in c.exposed_ports.unwrap_or_default().keys() {
            let (p, proto) = k.split_once('/').unwrap_or((k, "tcp"));
            if proto == "tcp" {
                if let Ok(p) = p.parse::<u16>() {
                    exposed_ports.push(p);
                }
            }
        }
        exposed_ports.sort_unstable();
        let config = ImageConfig {
            entrypoint: c.entrypoint.unwrap_or_default(),
            cmd: c.cmd.unwrap_or_default(),
            env: c.env.unwrap_or_default(),
            working_dir: c.working_dir.filter(|w| !w.is_empty()),
            user: c.user.filter(|u| !u.is_empty()),
            exposed_ports,
        };
        let mut total = cdesc.size.saturating_add(size);
        for l in &m.layers {
            total = total.saturating_add(l.size);
        }
        if total > self.limits.max_blob_bytes {
            return Err(format!(
                "the image's blobs exceed {} bytes",
                self.limits.max_blob_bytes
            ));
        }
        let tmp = self.tmp_path("image");
        let res = (|| {
            use std::os::unix::fs::PermissionsExt;
            let rootfs = tmp.join("rootfs");
            std::fs::create_dir_all(&rootfs).map_err(io(&rootfs))?;
            for d in [&tmp, &rootfs] {
                std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755))
                    .map_err(io(d))?;
            }
            let mut usage = Usage::default();
            for l in &m.layers {
                let compression = layer_compression(&l.media_type)?;
                let lhex = parse_digest(&l.digest)?;
                let p = self.blob_path(&lhex);
                let f = std::fs::File::open(&p).map_err(|e| format!("layer {}: {e}", l.digest))?;
                let len = f.metadata().map_err(io(&p))?.len();
                if len != l.size {
                    return Err(format!(
                        "layer {} is {len} bytes, its descriptor says {}",
                        l.digest, l.size
                    ));
                }
                unpack::apply_layer(
                    &rootfs,
                    std::io::BufReader::new(f),
                    compression,
                    &self.limits.unpack,
                    &mut usage,
                )
                .map_err(|e| format!("layer {}: {e}", l.digest))?;
            }
            unpack::ensure_mountpoints(&rootfs)?;
            let cfg = serde_json::to_vec_pretty(&config).map_err(|e| e.to_string())?;
            std::fs::write(tmp.join("image.json"), cfg).map_err(io(&tmp))?;
            let dest = self.dir.join("images").join(&hex);
            if let Err(e) = std::fs::rename(&tmp, &dest) {
                // Unpacked concurrently by another request: theirs is as good.
                if !dest.join("image.json").is_file() {
                    return Err(format!("{}: {e}", dest.display()));
                }
                let _ = std::fs::remove_dir_all(&tmp);
            }
            Ok(())
        })();
        if let Err(e) = res {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(e);
        }
        self.get(digest)?
            .ok_or_else(|| format!("image {digest} vanished after unpacking"))
    }
}

/// How a layer of `media_type` is compressed; zstd and unknown types are refused.
pub fn layer_compression(media_type: &str) -> Result<Compression, String> {
    match media_type {
        "application/vnd.oci.image.layer.v1.tar"
        | "application/vnd.oci.image.layer.nondistributable.v1.tar"
        | "application/vnd.docker.image.rootfs.diff.tar" => Ok(Compression::None),
        "application/vnd.oci.image.layer.v1.tar+gzip"
        | "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
        | "application/vnd.docker.image.rootfs.diff.tar.gzip" => Ok(Compression::Gzip),
        other => Err(format!(
            "layer media type {other:?} is not supported (tar or tar+gzip)"
        )),
    }
}

/// This machine's architecture as OCI names it.
pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        other => other,
    }
}
