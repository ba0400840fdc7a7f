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

/// The shared libraries `binary` loads, as `ldd` lists them (absolute paths, the loader
/// included; the vDSO has no file and is skipped). None for a static binary.
pub fn shared_libraries(binary: &Path) -> Result<Vec<PathBuf>, String> {
    let head = {
        use std::io::Read;
        let mut f =
            std::fs::File::open(binary).map_err(|e| format!("{}: {e}", binary.display()))?;
        let mut b = Vec::new();
        f.by_ref()
            .take(64 << 10)
            .read_to_end(&mut b)
            .map_err(|e| format!("{}: {e}", binary.display()))?;
        b
    };
    if is_static_elf(&head) {
        return Ok(Vec::new());
    }
    let out = std::process::Command::new("ldd")
        .arg(binary)
        .output()
        .map_err(|e| format!("ldd {}: {e} (install libc-bin)", binary.display()))?;
    if !out.status.success() {
        return Err(format!(
            "ldd {}: {}",
            binary.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let mut libs = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let path = match line.split_once("=>") {
            Some((_, rest)) => rest.split_whitespace().next(),
            None => line.split_whitespace().next(),
        };
        let Some(path) = path.filter(|p| p.starts_with('/')) else {
            continue;
        };
        let path = PathBuf::from(path);
        if path.components().any(|c| {
            !matches!(
                c,
                std::path::Component::Normal(_) | std::path::Component::RootDir
            )
        }) {
            return Err(format!("ldd named {}: not a plain path", path.display()));
        }
        libs.push(path);
    }
    Ok(libs)
}

/// Builds (or reuses) a root under `dir` for one trusted host program, `binary`, run as
/// `/bin/<name>`: its shared libraries copied from the host, an empty `/bin/<name>` for the
/// program itself (the caller binds it read-only there, so a rebuilt program is picked up),
/// empty `/in`, `/proc`, `/dev`, `/sys`, `/tmp`, `/work`, and a passwd with only root.
/// Nothing else of the host.
///
/// Each root is `dir/<hash>`, named after the list of libraries with their sizes and
/// modification times, and never changed once complete: after a host upgrade the next job
/// gets a new root while a running one keeps its own, and two jobs building the same root
/// at once each build in a directory of their own and the first rename wins.
pub fn program_rootfs(dir: &Path, binary: &Path) -> Result<PathBuf, String> {
    use sha2::Digest as _;
    use std::os::unix::fs::PermissionsExt;
    use std::sync::atomic::{AtomicU64, Ordering};
    static BUILDS: AtomicU64 = AtomicU64::new(0);
    let name = binary
        .file_name()
        .and_then(|n| n.to_str())
        .filter(|n| !n.is_empty())
        .ok_or_else(|| format!("{}: no file name", binary.display()))?;
    let libs = shared_libraries(binary)?;
    let mut key = format!("/bin/{name}\n");
    for l in &libs {
        let m = std::fs::metadata(l).map_err(|e| format!("{}: {e}", l.display()))?;
        let mtime = m
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        key.push_str(&format!("{} {} {mtime}\n", l.display(), m.len()));
    }
    let root = dir.join(hex::encode(&sha2::Sha256::digest(key.as_bytes())[..8]));
    if root.join(".complete").exists() {
        return Ok(root);
    }
    let tmp = dir.join(format!(
        ".build-{}-{}",
        std::process::id(),
        BUILDS.fetch_add(1, Ordering::Relaxed)
    ));
    let e = |e: std::io::Error| format!("program root {}: {e}", tmp.display());
    let _ = std::fs::remove_dir_all(&tmp);
    for d in ["bin", "etc", "in", "proc", "dev", "sys", "tmp", "work"] {
        std::fs::create_dir_all(tmp.join(d)).map_err(e)?;
    }
    for l in &libs {
        let to = tmp.join(l.strip_prefix("/").unwrap_or(l));
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent).map_err(e)?;
        }
        std::fs::copy(l, &to).map_err(e)?;
        std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o755)).map_err(e)?;
    }
    std::fs::write(tmp.join("bin").join(name), b"").map_err(e)?;
    std::fs::write(tmp.join("etc/passwd"), "root:x:0:0:root:/work:/bin/false\n").map_err(e)?;
    std::fs::write(tmp.join("etc/group"), "root:x:0:\n").map_err(e)?;
    std::fs::write(tmp.join(".complete"), key).map_err(e)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).map_err(e)?;
    if let Err(err) = std::fs::rename(&tmp, &root) {
        let _ = std::fs::remove_dir_all(&tmp);
        // Another build finished first: use its root.
        if !root.join(".complete").exists() {
            return Err(format!("program root {}: {err}", root.display()));
        }
    }
    Ok(root)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The root of a dynamic program holds its loader and libraries, an empty mountpoint
    /// for the program, and nothing else of the host.
    #[test]
    fn a_program_root_holds_only_its_libraries() {
        let d = tempfile::tempdir().unwrap();
        let ls = Path::new("/bin/ls");
        let libs = shared_libraries(ls).unwrap();
        assert!(
            libs.iter().any(|l| l.to_string_lossy().contains("libc.so")),
            "{libs:?}"
        );
        let root = program_rootfs(&d.path().join("root"), ls).unwrap();
        for l in &libs {
            let copy = root.join(l.strip_prefix("/").unwrap());
            assert_eq!(
                std::fs::read(&copy).unwrap(),
                std::fs::read(l).unwrap(),
                "{}",
                l.display()
            );
        }
        assert_eq!(std::fs::metadata(root.join("bin/ls")).unwrap().len(), 0);
        let mut top: Vec<String> = std::fs::read_dir(&root)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        top.sort();
        let mut want: Vec<String> = [
            ".complete",
            "bin",
            "dev",
            "etc",
            "in",
            "proc",
            "sys",
            "tmp",
            "work",
        ]
        .iter()
        .map(|s| s.to_string())
        .chain(libs.iter().filter_map(|l| {
            l.components()
                .nth(1)
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
        }))
        .collect();
        want.sort();
        want.dedup();
        assert_eq!(top, want);
        // Reused while nothing changed; another program (other libraries) gets its own root,
        // and the first one stays as it was (a job running on it keeps it).
        std::fs::write(root.join("bin/marker"), b"").unwrap();
        assert_eq!(program_rootfs(&d.path().join("root"), ls).unwrap(), root);
        assert!(root.join("bin/marker").exists());
        let other = program_rootfs(&d.path().join("root"), Path::new("/bin/mount")).unwrap();
        assert_ne!(other, root);
        assert!(other.join("bin/mount").exists() && root.join("bin/marker").exists());
        // Builds racing for one root all end with that root, complete.
        let racers: Vec<_> = (0..4)
            .map(|_| {
                let dir = d.path().join("race");
                std::thread::spawn(move || program_rootfs(&dir, Path::new("/bin/ls")))
            })
            .collect();
        let roots: Vec<PathBuf> = racers
            .into_iter()
            .map(|t| t.join().unwrap().unwrap())
            .collect();
        assert!(roots
            .iter()
            .all(|r| r == &roots[0] && r.join(".complete").exists()));
        let left: Vec<_> = std::fs::read_dir(d.path().join("race")).unwrap().collect();
        assert_eq!(left.len(), 1, "no build directory left behind");
    }

    #[test]
    fn a_static_program_needs_no_libraries() {
        let bb = find_busybox().expect("scripts/ci-deps installs busybox-static");
        assert_eq!(shared_libraries(&bb).unwrap(), Vec::<PathBuf>::new());
        let e = shared_libraries(Path::new("/nonexistent/program")).unwrap_err();
        assert!(e.contains("/nonexistent/program"), "{e}");
    }
}
