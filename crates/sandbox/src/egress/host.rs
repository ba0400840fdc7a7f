//! The host's tools egress runs (`ip`, `nft`, `unshare`, `umount`) and what it reads back.

use std::{
    collections::BTreeSet,
    net::Ipv4Addr,
    path::{Path, PathBuf},
    process::Command,
};

pub(super) fn remove_link(name: &str) {
    let _ = Command::new("ip")
        .args(["link", "del", name])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();
}

/// Unmounts a namespace file (if mounted; lazily, so a descriptor still open on it does not
/// keep it mounted) and removes it.
pub(super) fn unmount_netns(p: &Path) {
    if p.exists() {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(p)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
        let _ = std::fs::remove_file(p);
    }
}

/// The programs egress runs that this host lacks, each with its Debian package
/// (`nft (apt-get install nftables)`); empty when all are there.
pub fn missing_tools() -> Vec<String> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs: Vec<PathBuf> = std::env::split_paths(&path)
        .chain(SYSTEM_DIRS.map(PathBuf::from))
        .collect();
    missing_in(&dirs)
}

const SYSTEM_DIRS: [&str; 4] = ["/usr/sbin", "/usr/bin", "/sbin", "/bin"];

/// [`missing_tools`], looking in `dirs` only.
fn missing_in(dirs: &[PathBuf]) -> Vec<String> {
    [
        ("nft", "nftables"),
        ("ip", "iproute2"),
        ("unshare", "util-linux"),
        ("umount", "mount"),
    ]
    .iter()
    .filter(|(bin, _)| !dirs.iter().any(|d| d.join(bin).is_file()))
    .map(|(bin, pkg)| format!("{bin} (apt-get install {pkg})"))
    .collect()
}

/// `bin` on `PATH` or in the usual system directories.
pub fn find_program(bin: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(SYSTEM_DIRS.map(PathBuf::from))
        .map(|d| d.join(bin))
        .find(|p| p.is_file())
}

/// The links of this network namespace: name and alias.
pub fn host_links() -> Vec<(String, Option<String>)> {
    let Ok(out) = Command::new("ip").args(["-j", "link", "show"]).output() else {
        return Vec::new();
    };
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|l| {
            let name = l["ifname"].as_str()?.to_string();
            Some((name, l["ifalias"].as_str().map(str::to_string)))
        })
        .collect()
}

pub(super) fn host_ipv4_addresses() -> BTreeSet<Ipv4Addr> {
    let Ok(out) = Command::new("ip")
        .args(["-j", "-4", "addr", "show"])
        .output()
    else {
        return BTreeSet::new();
    };
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    v.as_array()
        .into_iter()
        .flatten()
        .flat_map(|l| l["addr_info"].as_array().into_iter().flatten())
        .filter_map(|a| a["local"].as_str()?.parse().ok())
        .collect()
}

pub(super) fn ip(args: &[&str]) -> Result<(), String> {
    run(
        Command::new("ip").args(args),
        &format!("ip {}", args.join(" ")),
    )
}

pub(super) fn run(cmd: &mut Command, what: &str) -> Result<(), String> {
    let out = cmd.output().map_err(|e| not_installed(what, e))?;
    check(out, what)
}

pub(super) fn run_stdin(cmd: &mut Command, input: &str, what: &str) -> Result<(), String> {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| not_installed(what, e))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(input.as_bytes())
            .map_err(|e| format!("{what}: {e}"))?;
    }
    check(
        child
            .wait_with_output()
            .map_err(|e| format!("{what}: {e}"))?,
        what,
    )
}

pub(super) fn not_installed(what: &str, e: std::io::Error) -> String {
    if e.kind() == std::io::ErrorKind::NotFound {
        format!(
            "{what}: not installed (egress needs iproute2, nftables and util-linux: \
             apt-get install iproute2 nftables util-linux)"
        )
    } else {
        format!("{what}: {e}")
    }
}

pub(super) fn check(out: std::process::Output, what: &str) -> Result<(), String> {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A host without nftables is told which package to install (the provider's
    /// `egress = "on"` and `unet miner doctor` quote this).
    #[test]
    fn missing_tools_name_their_packages() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_path_buf();
        assert_eq!(
            missing_in(std::slice::from_ref(&d)),
            [
                "nft (apt-get install nftables)",
                "ip (apt-get install iproute2)",
                "unshare (apt-get install util-linux)",
                "umount (apt-get install mount)"
            ]
        );
        for bin in ["ip", "unshare", "umount"] {
            std::fs::write(d.join(bin), "").unwrap();
        }
        assert_eq!(missing_in(&[d]), ["nft (apt-get install nftables)"]);
    }
}
