//! Files only their owner may read (keys, secrets, state that holds signed transactions):
//! created with mode 0600 on Unix, and replaced atomically.
//!
//! The one place the project writes such files; the node's key files and secret store, the
//! wallet keystore and the miner's key, chip files and state all go through it.

use std::{
    fs,
    io::{self, Write as _},
    path::Path,
};

/// Creates `path` (and its missing parent directories) readable and writable by its owner
/// only. Unless `overwrite`, an existing file is refused with
/// [`io::ErrorKind::AlreadyExists`]. The error names the path.
pub fn create(path: &Path, overwrite: bool) -> io::Result<fs::File> {
    let named =
        |e: io::Error| io::Error::new(e.kind(), format!("creating {}: {e}", path.display()));
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent).map_err(named)?;
    }
    let mut opts = fs::OpenOptions::new();
    opts.write(true);
    if overwrite {
        opts.create(true).truncate(true);
    } else {
        opts.create_new(true);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let f = opts.open(path).map_err(named)?;
    // An existing file keeps its mode through `open`: set it.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        f.set_permissions(fs::Permissions::from_mode(0o600))
            .map_err(named)?;
    }
    Ok(f)
}

/// Why a secret file may not be used: users other than its owner can read or write it
/// (`None` when only its owner can). The message names the mode and the fix.
pub fn exposed(path: &Path) -> io::Result<Option<String>> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(path)?.permissions().mode();
        if mode & 0o077 != 0 {
            return Ok(Some(format!(
                "{} is accessible by other users (mode {:o}); run chmod 600 on it",
                path.display(),
                mode & 0o777
            )));
        }
    }
    #[cfg(not(unix))]
    fs::metadata(path)?;
    Ok(None)
}

/// Replaces `path` with `contents` atomically: written to a private temporary file next to
/// it, synced, renamed over it, and the directory synced. A crash leaves the old file or the
/// new one, never a mix.
pub fn write_atomic(path: &Path, contents: &[u8]) -> io::Result<()> {
    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(".tmp");
    let tmp = path.with_file_name(tmp_name);
    {
        let mut f = create(&tmp, true)?;
        f.write_all(contents)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, path)
        .map_err(|e| io::Error::new(e.kind(), format!("replacing {}: {e}", path.display())))?;
    if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn files_others_can_read_are_exposed() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("unet-exposed-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let p = dir.join("k");
        write_atomic(&p, b"secret").unwrap();
        assert_eq!(exposed(&p).unwrap(), None);
        fs::set_permissions(&p, fs::Permissions::from_mode(0o640)).unwrap();
        let why = exposed(&p).unwrap().unwrap();
        assert!(why.ends_with("is accessible by other users (mode 640); run chmod 600 on it"));
        assert!(exposed(&dir.join("absent")).is_err());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[cfg(unix)]
    fn mode(p: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn files_are_private_and_existing_ones_refused_unless_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b/secret");
        create(&path, false).unwrap().write_all(b"1").unwrap();
        let err = create(&path, false).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert!(err.to_string().contains("a/b/secret"), "{err}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(mode(&path), 0o600);
            // A file someone made readable becomes private again when overwritten.
            fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
            create(&path, true).unwrap();
            assert_eq!(mode(&path), 0o600);
        }
    }

    #[test]
    fn atomic_writes_replace_the_whole_file_and_leave_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        write_atomic(&path, b"a longer first version").unwrap();
        write_atomic(&path, b"v2").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"v2");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
        #[cfg(unix)]
        assert_eq!(mode(&path), 0o600);
        // A path whose directory cannot be created is an error, not a panic.
        let blocked = path.join("under-a-file");
        assert!(write_atomic(&blocked, b"x").is_err());
    }
}
