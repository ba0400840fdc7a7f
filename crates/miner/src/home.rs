//! The miner's home directory.
//!
//! ```text
//! HOME/owner.key    the owner's ed25519 key (hex, mode 0600): owns the chips, pays fees, earns
//! HOME/chips/       chip files of the software backend (mode 0600 each)
//! HOME/state.json   what the daemon has done (last height, answered challenges, transactions
//!                   in flight), rewritten atomically; lets a restarted miner resume exactly
//! ```

use anyhow::{anyhow, bail, Context as _, Result};
use commonware_codec::{Copying, DecodeExt, Encode};
use commonware_cryptography::Signer;
use std::{
    fs,
    io::Write as _,
    path::{Path, PathBuf},
};
use unet_types::{Address, PrivateKey};

/// File name of the owner's private key in a home (0600, hex).
pub const OWNER_KEY: &str = "owner.key";
/// Directory of the chip files (software secure elements) in a home.
pub const CHIPS_DIR: &str = "chips";
/// File name of the daemon's state (in-flight transactions, totals) in a home.
pub const STATE_FILE: &str = "state.json";

/// Creates a file only its owner can read or write (0600). Unless `overwrite`, refuses an
/// existing file. (See [`unet_types::private_file`].)
pub fn create_private(path: &Path, overwrite: bool) -> Result<fs::File> {
    Ok(unet_types::private_file::create(path, overwrite)?)
}

/// A miner home.
#[derive(Clone, Debug)]
pub struct MinerHome {
    /// The home directory.
    pub dir: PathBuf,
}

impl MinerHome {
    /// The home at `dir` (nothing is read or created).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// Path of the owner's private key.
    pub fn key_path(&self) -> PathBuf {
        self.dir.join(OWNER_KEY)
    }

    /// Path of the chip-file directory.
    pub fn chips_dir(&self) -> PathBuf {
        self.dir.join(CHIPS_DIR)
    }

    /// Path of the daemon's state file.
    pub fn state_path(&self) -> PathBuf {
        self.dir.join(STATE_FILE)
    }

    /// Creates the home: a fresh owner key (0600) unless one exists, and the chips directory.
    /// Returns the owner address and whether the key is new.
    pub fn init(&self) -> Result<(Address, bool)> {
        fs::create_dir_all(self.chips_dir())
            .with_context(|| format!("creating {}", self.chips_dir().display()))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&self.dir, fs::Permissions::from_mode(0o700))?;
            fs::set_permissions(self.chips_dir(), fs::Permissions::from_mode(0o700))?;
        }
        if self.key_path().exists() {
            return Ok((self.owner_key()?.public_key(), false));
        }
        let mut seed = [0u8; 32];
        rand::fill(&mut seed);
        let key =
            PrivateKey::decode(Copying(&seed[..])).map_err(|e| anyhow!("ed25519 key: {e}"))?;
        let mut f = create_private(&self.key_path(), false)?;
        writeln!(f, "{}", hex::encode(key.encode()))?;
        f.sync_all()?;
        Ok((key.public_key(), true))
    }

    /// The owner key; refuses a key file other users can read.
    pub fn owner_key(&self) -> Result<PrivateKey> {
        let path = self.key_path();
        if let Some(why) = unet_types::private_file::exposed(&path).with_context(|| {
            format!(
                "reading {} (run `unet miner init --home {}` first)",
                path.display(),
                self.dir.display()
            )
        })? {
            bail!(why);
        }
        let text =
            fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        let bytes =
            hex::decode(text.trim()).with_context(|| format!("{} is not hex", path.display()))?;
        PrivateKey::decode(Copying(bytes.as_slice()))
            .map_err(|e| anyhow!("{} is not an ed25519 key: {e}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_writes_a_private_key_once_and_refuses_readable_keys() {
        let dir = tempfile::tempdir().unwrap();
        let home = MinerHome::new(dir.path().join("m"));
        let (addr, new) = home.init().unwrap();
        assert!(new);
        assert!(home.chips_dir().is_dir());
        let (again, new) = home.init().unwrap();
        assert!(!new);
        assert_eq!(addr, again);
        assert_eq!(home.owner_key().unwrap().public_key(), addr);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(home.key_path()).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
            fs::set_permissions(home.key_path(), fs::Permissions::from_mode(0o644)).unwrap();
            assert!(home.owner_key().is_err());
        }
    }
}
