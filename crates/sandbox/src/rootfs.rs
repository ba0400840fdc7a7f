//! The minimal root filesystem for bare commands (no image): Debian's static busybox and a
//! symlink per applet, nothing else of the host.

use std::path::{Path, PathBuf};

/// `UNET_BUSYBOX`, else the static busybox of Debian's `busybox-static` package.
pub fn find_busybox() -> Result<PathBuf, String> {
    let cands: Vec<PathBuf> = match std::env::var_os("UNET_BUSYBOX") {
        Some(p) => vec![PathBuf::from(p)],
        None => ["/bin/busybox", "/usr/bin/busybox"]
            .iter()
            .map(PathBuf::from)
            .collect(),
    };
    for p in cands {
        if let Ok(bytes) = std::fs::read(&p) {
            if is_static_elf(&bytes) {
                return Ok(p);
            }
            return Err(format!(
                "{} is not a static binary: install busybox-static (apt-get install busybox-static)",
                p.display()
            ));
        }
    }
    Err("busybox not found: install busybox-static (apt-get install busybox-static)".into())
}

/// An ELF file without a `PT_INTERP` program header (no dynamic loader needed).
pub fn is_static_elf(b: &[u8]) -> bool {
    if b.len() < 64 || &b[..4] != b"\x7fELF" || b[4] != 2 || b[5] != 1 {
        return false;
    }
    let u16at = |o: usize| u16::from_le_bytes([b[o], b[o + 1]]) as usize;
    let u64at = |o: usize| {
        let mut a = [0u8; 8];
        a.copy_from_slice(&b[o..o + 8]);
        u64::from_le_bytes(a) as usize
    };
    let (phoff, phentsize, phnum) = (u64at(0x20), u16at(0x36), u16at(0x38));
    for i in 0..phnum {
        let o = phoff.saturating_add(i.saturating_mul(phentsize));
        if o + 4 > b.len() {
            return false;
        }
        if u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]) == 3 {
            return false; // PT_INTERP
        }
    }
    true
}

/// The applets the busybox binary at `busybox` provides.
pub fn applets(busybox: &Path) -> Result<Vec<String>, String> {
    let out = std::process::Command::new(busybox)
        .arg("--list")
        .output()
        .map_err(|e| format!("{}: {e}", busybox.display()))?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::trim)
        .filter(|a| {
            !a.is_empty()
                && a.bytes()
                    .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_' || c == b'.')
                && *a != "."
                && *a != ".."
        })
        .map(String::from)
        .collect())
}

/// Builds (once; an existing complete one is reused) a busybox root at `dir`: `/bin/busybox`,
/// `/bin/<applet>` symlinks, `/etc/passwd`, `/etc/group`, empty `/proc`, `/dev`, `/sys`,
/// `/tmp`, `/work`, `/data`. Readable by everyone, writable by the host's root only.
pub fn busybox_rootfs(dir: &Path) -> Result<PathBuf, String> {
    let done = dir.join(".complete");
    if done.exists() {
        return Ok(dir.to_path_buf());
    }
    let bb = find_busybox()?;
    let tmp = dir.with_extension("tmp");
    let _ = std::fs::remove_dir_all(&tmp);
    let e = |e: std::io::Error| format!("busybox root {}: {e}", tmp.display());
    for d in ["bin", "etc", "proc", "dev", "sys", "tmp", "work", "data"] {
        std::fs::create_dir_all(tmp.join(d)).map_err(e)?;
    }
    std::fs::copy(&bb, tmp.join("bin/busybox")).map_err(e)?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        tmp.join("bin/busybox"),
        std::fs::Permissions::from_mode(0o755),
    )
    .map_err(e)?;
    for a in applets(&bb)? {
        if a == "busybox" {
            continue;
        }
        std::os::unix::fs::symlink("busybox", tmp.join("bin").join(&a)).map_err(e)?;
    }
    std::fs::write(tmp.join("etc/passwd"), "root:x:0:0:root:/work:/bin/sh\n").map_err(e)?;
    std::fs::write(tmp.join("etc/group"), "root:x:0:\n").map_err(e)?;
    std::fs::write(tmp.join("etc/hosts"), "127.0.0.1 localhost\n").map_err(e)?;
    std::fs::write(tmp.join(".complete"), b"").map_err(e)?;
    for p in [tmp.as_path(), &tmp.join("bin"), &tmp.join("etc")] {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).map_err(e)?;
    }
    let _ = std::fs::remove_dir_all(dir);
    std::fs::rename(&tmp, dir).map_err(e)?;
    Ok(dir.to_path_buf())
}
