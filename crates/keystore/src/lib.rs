//! The wallet keystore: one JSON file per key, `DIR/NAME.json`, mode 0600 in a 0700 directory.
//!
//! ```text
//! {"version": 1, "name": "alice", "address": "<hex ed25519 public key>", "encrypted": true,
//!  "kdf": {"algorithm": "argon2id", "version": 19, "m_cost_kib": 65536, "t_cost": 3, "p_cost": 1},
//!  "salt": "<16 bytes hex>", "cipher": "xchacha20poly1305", "nonce": "<24 bytes hex>",
//!  "ciphertext": "<32-byte secret + 16-byte tag, hex>"}
//! {"version": 1, "name": "dev", "address": "...", "encrypted": false, "secret": "<32 bytes hex>"}
//! ```
//!
//! The secret is the key's commonware codec encoding (the same bytes as a `faucet.key` file).
//! Encryption: Argon2id derives a 32-byte key from the passphrase and a random salt;
//! XChaCha20-Poly1305 encrypts the secret under a random nonce with the address bytes as
//! associated data, so editing the address in the file makes decryption fail. After
//! decrypting, the key's public key must equal the stored address.
//!
//! Hostile files: a key file readable by other users is refused (`chmod 600` is named), as
//! are unknown versions, malformed JSON, and KDF costs outside a fixed range (a file cannot
//! make the reader spend unbounded memory or time). Secrets live in `Zeroizing` buffers and
//! are never formatted; names are restricted so a name cannot leave the keystore directory.
//!
//! The wallet commands of `unet` (`keys`, `transfer`, the job and market commands that sign)
//! read keys only through this crate.

#![forbid(unsafe_code)]

use anyhow::{anyhow, bail, Context as _, Result};
use chacha20poly1305::{
    aead::{Aead, Payload},
    KeyInit, XChaCha20Poly1305, XNonce,
};
use commonware_codec::{Copying, DecodeExt, Encode};
use commonware_cryptography::Signer;
use rand::Rng;
use serde::{Deserialize, Serialize};
use std::{
    fs,
    io::Write as _,
    path::{Path, PathBuf},
};
use unet_types::{hexser, Address, PrivateKey};
use zeroize::Zeroizing;

/// Keystore file format version.
pub const VERSION: u32 = 1;
/// Argon2id cost used for new keys (RFC 9106's second recommended option: 64 MiB, 3 passes).
pub const DEFAULT_KDF: KdfParams = KdfParams {
    algorithm: String::new(),
    version: 0x13,
    m_cost_kib: 64 * 1024,
    t_cost: 3,
    p_cost: 1,
};
/// Most memory a key file may ask the KDF for (1 GiB), so a crafted file cannot exhaust memory.
const MAX_M_COST_KIB: u32 = 1024 * 1024;
const MAX_T_COST: u32 = 64;
const MAX_P_COST: u32 = 16;
const SALT_LEN: usize = 16;
const NONCE_LEN: usize = 24;
const SECRET_LEN: usize = 32;

/// Argon2id parameters as stored in a key file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KdfParams {
    /// Always `argon2id` (filled in when a file is written).
    pub algorithm: String,
    /// Argon2 version (0x13 = 19).
    pub version: u32,
    /// Memory cost in KiB (at most 1 GiB is accepted).
    pub m_cost_kib: u32,
    /// Passes over memory (at most 64).
    pub t_cost: u32,
    /// Lanes (at most 16).
    pub p_cost: u32,
}

/// A key file.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct KeyFile {
    /// File format version ([`VERSION`]).
    pub version: u32,
    /// The key's name in the keystore (also the file name).
    pub name: String,
    /// The ed25519 public key, hex; checked against the secret after unlocking.
    pub address: String,
    /// Whether the secret is encrypted under a passphrase.
    pub encrypted: bool,
    /// The plain secret, hex (unencrypted files only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// The passphrase KDF's costs (encrypted files only).
    pub kdf: Option<KdfParams>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// The KDF salt, 16 bytes hex.
    pub salt: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// Always `xchacha20poly1305`.
    pub cipher: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// The AEAD nonce, 24 bytes hex.
    pub nonce: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// The encrypted 32-byte secret and its 16-byte tag, hex.
    pub ciphertext: Option<String>,
}

impl KeyFile {
    /// Wraps a secret key, encrypting it when a passphrase is given.
    pub fn new(name: &str, key: &PrivateKey, passphrase: Option<&[u8]>) -> Result<Self> {
        Self::with_kdf(name, key, passphrase, &DEFAULT_KDF)
    }

    /// As [`KeyFile::new`] with explicit KDF costs (tests use cheap ones).
    pub fn with_kdf(
        name: &str,
        key: &PrivateKey,
        passphrase: Option<&[u8]>,
        kdf: &KdfParams,
    ) -> Result<Self> {
        let address = key.public_key();
        let secret = Zeroizing::new(key.encode().to_vec());
        let mut file = KeyFile {
            version: VERSION,
            name: name.to_string(),
            address: hexser::to_hex(&address),
            encrypted: passphrase.is_some(),
            secret: None,
            kdf: None,
            salt: None,
            cipher: None,
            nonce: None,
            ciphertext: None,
        };
        let Some(passphrase) = passphrase else {
            file.secret = Some(hex::encode(&*secret));
            return Ok(file);
        };
        let kdf = KdfParams {
            algorithm: "argon2id".into(),
            ..kdf.clone()
        };
        let mut rng = rand::rng();
        let mut salt = [0u8; SALT_LEN];
        rng.fill_bytes(&mut salt);
        let mut nonce = [0u8; NONCE_LEN];
        rng.fill_bytes(&mut nonce);
        let cipher = cipher(passphrase, &salt, &kdf)?;
        let ciphertext = cipher
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: &secret,
                    aad: &address.encode(),
                },
            )
            .map_err(|_| anyhow!("encryption failed"))?;
        file.kdf = Some(kdf);
        file.salt = Some(hex::encode(salt));
        file.cipher = Some("xchacha20poly1305".into());
        file.nonce = Some(hex::encode(nonce));
        file.ciphertext = Some(hex::encode(ciphertext));
        Ok(file)
    }

    /// The stored address (checked to be a valid public key).
    pub fn address(&self) -> Result<Address> {
        hexser::from_hex(&self.address)
            .map_err(|e| anyhow!("key {:?}: invalid address in file: {e}", self.name))
    }

    /// Recovers the secret key; encrypted keys need the passphrase.
    pub fn unlock(&self, passphrase: Option<&[u8]>) -> Result<PrivateKey> {
        let address = self.address()?;
        let secret: Zeroizing<Vec<u8>> = if self.encrypted {
            let Some(passphrase) = passphrase else {
                bail!(
                    "key {:?} is encrypted: give its passphrase with --passphrase-file FILE or \
                     --passphrase-env VAR",
                    self.name
                );
            };
            let field = |v: &Option<String>, what: &str| -> Result<Vec<u8>> {
                let s = v
                    .as_deref()
                    .ok_or_else(|| anyhow!("key {:?}: file has no {what}", self.name))?;
                hex::decode(s).map_err(|e| anyhow!("key {:?}: {what} is not hex: {e}", self.name))
            };
            let kdf = self
                .kdf
                .as_ref()
                .ok_or_else(|| anyhow!("key {:?}: file has no kdf parameters", self.name))?;
            if self.cipher.as_deref() != Some("xchacha20poly1305") {
                bail!("key {:?}: unsupported cipher {:?}", self.name, self.cipher);
            }
            let salt = field(&self.salt, "salt")?;
            let nonce = field(&self.nonce, "nonce")?;
            let ciphertext = field(&self.ciphertext, "ciphertext")?;
            let nonce = XNonce::try_from(nonce.as_slice())
                .map_err(|_| anyhow!("key {:?}: nonce must be {NONCE_LEN} bytes", self.name))?;
            let cipher = cipher(passphrase, &salt, kdf)?;
            let plain = cipher
                .decrypt(
                    &nonce,
                    Payload {
                        msg: &ciphertext,
                        aad: &address.encode(),
                    },
                )
                .map_err(|_| {
                    anyhow!(
                        "wrong passphrase for key {:?} (or its file was modified)",
                        self.name
                    )
                })?;
            Zeroizing::new(plain)
        } else {
            let s = self
                .secret
                .as_deref()
                .ok_or_else(|| anyhow!("key {:?}: file has no secret", self.name))?;
            Zeroizing::new(
                hex::decode(s.trim())
                    .map_err(|e| anyhow!("key {:?}: secret is not hex: {e}", self.name))?,
            )
        };
        if secret.len() != SECRET_LEN {
            bail!("key {:?}: secret must be {SECRET_LEN} bytes", self.name);
        }
        let key = PrivateKey::decode(Copying(secret.as_slice()))
            .map_err(|e| anyhow!("key {:?}: invalid secret: {e}", self.name))?;
        if key.public_key() != address {
            bail!(
                "key {:?}: secret does not match the stored address",
                self.name
            );
        }
        Ok(key)
    }
}

/// A new random key.
pub fn generate() -> PrivateKey {
    let mut seed = Zeroizing::new([0u8; SECRET_LEN]);
    rand::rng().fill_bytes(seed.as_mut());
    PrivateKey::decode(Copying(&seed[..])).expect("any 32 bytes are an ed25519 secret")
}

/// Argon2id(passphrase, salt) -> XChaCha20-Poly1305 cipher.
fn cipher(passphrase: &[u8], salt: &[u8], kdf: &KdfParams) -> Result<XChaCha20Poly1305> {
    if kdf.algorithm != "argon2id" || kdf.version != 0x13 {
        bail!(
            "unsupported kdf {} version {} (expected argon2id version 19)",
            kdf.algorithm,
            kdf.version
        );
    }
    if kdf.m_cost_kib > MAX_M_COST_KIB || kdf.t_cost > MAX_T_COST || kdf.p_cost > MAX_P_COST {
        bail!("kdf costs in key file are out of range: {kdf:?}");
    }
    let params = argon2::Params::new(kdf.m_cost_kib, kdf.t_cost, kdf.p_cost, Some(32))
        .map_err(|e| anyhow!("invalid kdf parameters: {e}"))?;
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut key = Zeroizing::new([0u8; 32]);
    argon
        .hash_password_into(passphrase, salt, key.as_mut())
        .map_err(|e| anyhow!("deriving the key from the passphrase: {e}"))?;
    XChaCha20Poly1305::new_from_slice(key.as_ref()).map_err(|_| anyhow!("bad derived key length"))
}

/// Checks a key name: 1-64 of `[A-Za-z0-9_.-]`, not starting with `.` or `-`, and not
/// something that reads as an address (64 hex digits).
pub fn check_name(name: &str) -> Result<()> {
    let ok_chars = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if name.is_empty() || name.len() > 64 || !ok_chars || name.starts_with(['.', '-']) {
        bail!(
            "invalid key name {name:?}: use 1-64 letters, digits, '_', '-' or '.', not starting \
             with '.' or '-'"
        );
    }
    if looks_like_address(name) {
        bail!("invalid key name {name:?}: it reads as an address");
    }
    Ok(())
}

/// Whether `s` is 64 hex digits (optionally `0x`-prefixed), the form of an address.
pub fn looks_like_address(s: &str) -> bool {
    let s = s.strip_prefix("0x").unwrap_or(s);
    s.len() == 64 && s.chars().all(|c| c.is_ascii_hexdigit())
}

/// A keystore directory.
pub struct Keystore {
    /// The directory holding the key files.
    pub dir: PathBuf,
}

impl Keystore {
    /// `--keystore`/`UNET_KEYSTORE` if given, else `$HOME/.unet/keys`.
    pub fn open(dir: Option<PathBuf>) -> Result<Self> {
        let dir = match dir {
            Some(d) => d,
            None => {
                let home = std::env::var_os("HOME").ok_or_else(|| {
                    anyhow!("HOME is not set: pass --keystore DIR or set UNET_KEYSTORE")
                })?;
                PathBuf::from(home).join(".unet").join("keys")
            }
        };
        Ok(Self { dir })
    }

    /// The file a key of that name lives in.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.json"))
    }

    /// Writes a new key file; refuses to overwrite an existing key.
    pub fn add(&self, file: &KeyFile) -> Result<PathBuf> {
        check_name(&file.name)?;
        if !self.dir.exists() {
            fs::create_dir_all(&self.dir)
                .with_context(|| format!("creating keystore {}", self.dir.display()))?;
            set_mode(&self.dir, 0o700)?;
        }
        let path = self.path(&file.name);
        let mut f = match unet_types::private_file::create(&path, false) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                bail!(
                    "a key named {:?} already exists ({})",
                    file.name,
                    path.display()
                )
            }
            Err(e) => return Err(e).with_context(|| format!("creating {}", path.display())),
        };
        let text = Zeroizing::new(serde_json::to_string_pretty(file)?);
        f.write_all(text.as_bytes())
            .and_then(|_| f.write_all(b"\n"))
            .and_then(|_| f.sync_all())
            .with_context(|| format!("writing {}", path.display()))?;
        Ok(path)
    }

    /// Reads a key file by name.
    pub fn get(&self, name: &str) -> Result<KeyFile> {
        check_name(name)?;
        let path = self.path(name);
        if !path.exists() {
            bail!(
                "no key named {name:?} in {} (see `unet keys list`)",
                self.dir.display()
            );
        }
        read_file(&path)
    }

    /// Whether a key of that name exists.
    pub fn contains(&self, name: &str) -> bool {
        check_name(name).is_ok() && self.path(name).exists()
    }

    /// Every `*.json` file, sorted by name; unreadable ones as errors.
    pub fn list(&self) -> Result<Vec<(String, Result<KeyFile>)>> {
        if !self.dir.exists() {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        let entries = fs::read_dir(&self.dir)
            .with_context(|| format!("reading keystore {}", self.dir.display()))?;
        for entry in entries {
            let path = entry?.path();
            let Some(name) = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".json"))
            else {
                continue;
            };
            out.push((name.to_string(), read_file(&path)));
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }
}

fn read_file(path: &Path) -> Result<KeyFile> {
    if let Some(why) = unet_types::private_file::exposed(path)
        .with_context(|| format!("reading {}", path.display()))?
    {
        bail!(why);
    }
    let text = Zeroizing::new(
        fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?,
    );
    let file: KeyFile = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a valid key file", path.display()))?;
    if file.version != VERSION {
        bail!(
            "{}: unsupported key file version {} (this unet reads version {VERSION})",
            path.display(),
            file.version
        );
    }
    Ok(file)
}

fn set_mode(path: &Path, mode: u32) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(path, fs::Permissions::from_mode(mode))
            .with_context(|| format!("setting permissions of {}", path.display()))?;
    }
    let _ = (path, mode);
    Ok(())
}

/// Reads a passphrase from a file (one trailing newline dropped) or an environment variable.
pub fn read_passphrase(
    file: Option<&Path>,
    env: Option<&str>,
) -> Result<Option<Zeroizing<Vec<u8>>>> {
    let raw = match (file, env) {
        (Some(f), _) => Zeroizing::new(
            fs::read(f).with_context(|| format!("reading passphrase file {}", f.display()))?,
        ),
        (None, Some(var)) => Zeroizing::new(
            std::env::var_os(var)
                .ok_or_else(|| anyhow!("environment variable {var} is not set"))?
                .into_encoded_bytes(),
        ),
        (None, None) => return Ok(None),
    };
    let mut pass = raw;
    if pass.ends_with(b"\n") {
        pass.pop();
        if pass.ends_with(b"\r") {
            pass.pop();
        }
    }
    if pass.is_empty() {
        bail!("the passphrase is empty");
    }
    Ok(Some(pass))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHEAP: KdfParams = KdfParams {
        algorithm: String::new(),
        version: 0x13,
        m_cost_kib: 64,
        t_cost: 1,
        p_cost: 1,
    };

    fn key() -> PrivateKey {
        PrivateKey::decode(Copying(&[7u8; 32])).unwrap()
    }

    #[test]
    fn encrypted_round_trip_and_wrong_passphrase() {
        let f = KeyFile::with_kdf("a", &key(), Some(b"correct horse"), &CHEAP).unwrap();
        assert!(f.encrypted && f.secret.is_none());
        assert_eq!(f.kdf.as_ref().unwrap().algorithm, "argon2id");
        assert_eq!(
            hex::decode(f.ciphertext.as_ref().unwrap()).unwrap().len(),
            48
        );
        assert_eq!(
            f.unlock(Some(b"correct horse")).unwrap().encode(),
            key().encode()
        );
        let e = f.unlock(Some(b"wrong")).unwrap_err().to_string();
        assert_eq!(
            e,
            "wrong passphrase for key \"a\" (or its file was modified)"
        );
        let e = f.unlock(None).unwrap_err().to_string();
        assert!(e.starts_with("key \"a\" is encrypted"), "{e}");
        // The address is bound to the ciphertext.
        let mut g = f.clone();
        g.address = hexser::to_hex(
            &PrivateKey::decode(Copying(&[8u8; 32]))
                .unwrap()
                .public_key(),
        );
        let e = g.unlock(Some(b"correct horse")).unwrap_err().to_string();
        assert_eq!(
            e,
            "wrong passphrase for key \"a\" (or its file was modified)"
        );
    }

    #[test]
    fn plain_round_trip() {
        let f = KeyFile::new("dev", &key(), None).unwrap();
        assert!(!f.encrypted);
        assert_eq!(f.secret.as_deref(), Some(hex::encode([7u8; 32]).as_str()));
        assert_eq!(f.unlock(None).unwrap().encode(), key().encode());
    }

    #[test]
    fn names() {
        for ok in ["alice", "a.b-c_1", "faucet"] {
            check_name(ok).unwrap();
        }
        for bad in [
            "",
            ".x",
            "-x",
            "a/b",
            "../x",
            "a b",
            &"a".repeat(65),
            &"ab".repeat(32),
        ] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn hostile_kdf_costs_are_refused() {
        let mut f = KeyFile::with_kdf("a", &key(), Some(b"pw"), &CHEAP).unwrap();
        f.kdf.as_mut().unwrap().m_cost_kib = u32::MAX;
        let e = f.unlock(Some(b"pw")).unwrap_err().to_string();
        assert!(
            e.starts_with("kdf costs in key file are out of range"),
            "{e}"
        );
    }
}
