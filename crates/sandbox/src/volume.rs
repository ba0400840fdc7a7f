//! A lease's writable volume with a size quota.
//!
//! A plain directory would let a workload fill the miner's disk (`RLIMIT_FSIZE` bounds one
//! file, not how many). So a quota volume is its own small filesystem: a sparse ext4 image
//! file of exactly the quota's size, loop-mounted (`nosuid,nodev`) at the volume directory.
//! Writes beyond the quota fail with `ENOSPC` inside the container and cost the host at most
//! the image's size. The image's root directory is owned by the lease's mapped root
//! (`mkfs.ext4 -E root_owner`) with mode 0700, so another lease's uid range cannot read it,
//! exactly as with [`crate::runner::prepare_volume`].
//!
//! The image file outlives the mount: the volume is mounted while a workload of the lease
//! runs ([`acquire`] counts the workloads; the last one to end unmounts it), and the next
//! workload, after a miner restart too, mounts the same image with its data; [`remove`]
//! deletes it when the lease's grace period is over. One image is never mounted twice. Needs root, `mkfs.ext4` (e2fsprogs) and a loop device; `unet miner doctor`
//! says when one is missing.

use crate::IdRange;
use std::{
    collections::HashMap,
    os::unix::fs::{OpenOptionsExt, PermissionsExt},
    path::Path,
    path::PathBuf,
    process::Command,
    sync::{LazyLock, Mutex},
};

/// Smallest quota accepted (ext4 needs room for its own metadata).
pub const MIN_QUOTA_BYTES: u64 = 8 << 20;
/// Largest quota accepted (1 TiB), so a configuration typo cannot ask for an absurd file.
pub const MAX_QUOTA_BYTES: u64 = 1 << 40;

/// Mounts the quota volume `image` at `dir`, creating and formatting the image first if it
/// does not exist. Already mounted there: nothing to do (a restarted miner calls this again).
pub fn mount(image: &Path, dir: &Path, quota_bytes: u64, ids: IdRange) -> Result<(), String> {
    if !(MIN_QUOTA_BYTES..=MAX_QUOTA_BYTES).contains(&quota_bytes) {
        return Err(format!(
            "volume quota {quota_bytes} bytes is outside {MIN_QUOTA_BYTES}..={MAX_QUOTA_BYTES}"
        ));
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("volume {}: {e}", dir.display()))?;
    if is_mountpoint(dir)? {
        return Ok(());
    }
    if !image.exists() {
        create_image(image, quota_bytes, ids)?;
    }
    run(
        Command::new("mount")
            .args(["-t", "ext4", "-o", "loop,nosuid,nodev"])
            .arg(image)
            .arg(dir),
        "mount",
    )?;
    // mkfs leaves a root-owned lost+found; the workload has no use for it.
    let _ = std::fs::remove_dir(dir.join("lost+found"));
    std::os::unix::fs::chown(dir, Some(ids.host_base), Some(ids.host_base))
        .map_err(|e| format!("volume {}: chown: {e}", dir.display()))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .map_err(|e| format!("volume {}: {e}", dir.display()))
}

/// How many running workloads use each mounted volume of this process.
static IN_USE: LazyLock<Mutex<HashMap<PathBuf, usize>>> = LazyLock::new(Default::default);

/// A volume mounted for one workload; the last one dropped unmounts it.
#[derive(Debug)]
pub struct MountedVolume {
    dir: PathBuf,
}

impl MountedVolume {
    /// The mounted directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for MountedVolume {
    fn drop(&mut self) {
        let mut in_use = IN_USE.lock().unwrap_or_else(|e| e.into_inner());
        let Some(n) = in_use.get_mut(&self.dir) else {
            return;
        };
        *n -= 1;
        if *n == 0 {
            in_use.remove(&self.dir);
            // Nothing else of this process uses it; if unmounting fails (a process of the
            // workload still running), the next `acquire` finds it mounted and uses it.
            let _ = unmount(&self.dir);
        }
    }
}

/// [`mount`]s the volume for one more workload (unless it is mounted for another already).
pub fn acquire(
    image: &Path,
    dir: &Path,
    quota_bytes: u64,
    ids: IdRange,
) -> Result<MountedVolume, String> {
    let mut in_use = IN_USE.lock().unwrap_or_else(|e| e.into_inner());
    let n = in_use.entry(dir.to_path_buf()).or_insert(0);
    if *n == 0 {
        if let Err(e) = mount(image, dir, quota_bytes, ids) {
            in_use.remove(dir);
            return Err(e);
        }
    }
    *n += 1;
    Ok(MountedVolume {
        dir: dir.to_path_buf(),
    })
}

/// Unmounts the volume at `dir` if it is mounted (its image and data stay).
pub fn unmount(dir: &Path) -> Result<(), String> {
    if !dir.exists() || !is_mountpoint(dir)? {
        return Ok(());
    }
    run(Command::new("umount").arg(dir), "umount")
}

/// Unmounts the volume and deletes its image and directory: the lease's data is gone.
pub fn remove(image: &Path, dir: &Path) -> Result<(), String> {
    if IN_USE
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .contains_key(dir)
    {
        return Err(format!("volume {} is in use by a workload", dir.display()));
    }
    unmount(dir)?;
    match std::fs::remove_file(image) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("volume image {}: {e}", image.display())),
    }
    match std::fs::remove_dir(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(format!("volume {}: {e}", dir.display())),
    }
}

/// Bytes the image really occupies on the host's disk (it is sparse).
pub fn allocated_bytes(image: &Path) -> Result<u64, String> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(image).map_err(|e| format!("{}: {e}", image.display()))?;
    Ok(m.blocks() * 512)
}

fn create_image(image: &Path, quota_bytes: u64, ids: IdRange) -> Result<(), String> {
    if let Some(parent) = image.parent() {
        std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    }
    let partial = image.with_extension("partial");
    let f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&partial)
        .map_err(|e| format!("volume image {}: {e}", partial.display()))?;
    f.set_len(quota_bytes)
        .map_err(|e| format!("volume image {}: {e}", partial.display()))?;
    drop(f);
    run(
        Command::new("mkfs.ext4")
            .args(["-q", "-F", "-m", "0", "-E"])
            .arg(format!(
                "root_owner={}:{},lazy_itable_init=0,lazy_journal_init=0",
                ids.host_base, ids.host_base
            ))
            .arg(&partial),
        "mkfs.ext4",
    )?;
    // Only a fully formatted image gets its final name, so a crash never leaves a half one.
    std::fs::rename(&partial, image).map_err(|e| format!("volume image {}: {e}", image.display()))
}

fn run(cmd: &mut Command, what: &str) -> Result<(), String> {
    let out = cmd.output().map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            format!("{what} is not installed (Debian: apt-get install e2fsprogs mount)")
        } else {
            format!("{what}: {e}")
        }
    })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{what} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Whether `dir` is a mount point, from `/proc/self/mountinfo`.
fn is_mountpoint(dir: &Path) -> Result<bool, String> {
    let dir = dir
        .canonicalize()
        .map_err(|e| format!("volume {}: {e}", dir.display()))?;
    let info = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| format!("/proc/self/mountinfo: {e}"))?;
    Ok(info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .any(|m| Path::new(&unescape(m)) == dir))
}

/// Mountinfo escapes space, tab, newline and backslash as `\ooo` octal.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_escapes_are_undone() {
        assert_eq!(unescape(r"/a\040b/c\134d"), "/a b/c\\d");
        assert_eq!(unescape("/plain"), "/plain");
        assert_eq!(unescape(r"/trailing\04"), r"/trailing\04");
    }

    #[test]
    fn absurd_quotas_are_refused() {
        let d = std::env::temp_dir().join("unet-volume-quota-unit");
        for q in [0, MIN_QUOTA_BYTES - 1, MAX_QUOTA_BYTES + 1] {
            let e = mount(&d.join("img"), &d.join("v"), q, IdRange::default()).unwrap_err();
            assert!(e.contains("outside"), "{e}");
        }
        assert!(!d.join("img").exists());
    }
}
