//! Deleting lease volumes after their lease: a lease's volume (its own filesystem image, see
//! [`unet_sandbox::volume`]) outlives the lease by a grace period, then it is removed, so
//! short leases cannot pile volumes up on the provider's disk.
//!
//! Every [`SWEEP_EVERY`] the job server lists `SANDBOX_DIR/volumes/lease-N.img` and asks the
//! chain about lease N: a lease that ended (closed at a height, or ran out at its end) at
//! least `volume_grace_blocks` blocks before the chain's height, or that the chain does not
//! know, loses its volume. A volume a workload is using is never removed; a chain that cannot
//! be asked removes nothing.
//!
//! Until then the renter can download the volume ([`write_tar`], `GET /v1/volume`): a tar of
//! its directories, regular files and symbolic links (archived as links, never followed);
//! anything else (fifos, sockets) is left out, and every file is opened without following
//! links and without blocking, then checked to be a regular file, so nothing the workload
//! planted can make the miner read outside the volume or wait forever.

use super::{exec::SandboxConfig, server::ChainView};
use std::{
    io::Write,
    os::unix::fs::{FileTypeExt, OpenOptionsExt},
    path::Path,
    time::Duration,
};
use tracing::{info, warn};

/// Deepest directory nesting archived (deeper entries are left out).
const MAX_DEPTH: usize = 64;

/// Writes a tar of the volume directory `dir` to `out`; returns the entries archived.
pub fn write_tar(dir: &Path, out: impl Write) -> std::io::Result<u64> {
    let mut tar = tar::Builder::new(out);
    tar.follow_symlinks(false);
    let mut n = 0;
    add_dir(&mut tar, dir, Path::new(""), 0, &mut n)?;
    tar.into_inner()?.flush()?;
    Ok(n)
}

fn add_dir<W: Write>(
    tar: &mut tar::Builder<W>,
    root: &Path,
    rel: &Path,
    depth: usize,
    n: &mut u64,
) -> std::io::Result<()> {
    if depth > MAX_DEPTH {
        return Ok(());
    }
    let mut entries: Vec<_> = std::fs::read_dir(root.join(rel))?.flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let rel = rel.join(e.file_name());
        let path = root.join(&rel);
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        let kind = meta.file_type();
        if kind.is_dir() {
            let mut h = tar::Header::new_gnu();
            h.set_metadata(&meta);
            h.set_size(0);
            tar.append_data(&mut h, &rel, std::io::empty())?;
            *n += 1;
            add_dir(tar, root, &rel, depth + 1, n)?;
        } else if kind.is_symlink() {
            let target = std::fs::read_link(&path)?;
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Symlink);
            h.set_size(0);
            h.set_mode(0o777);
            tar.append_link(&mut h, &rel, &target)?;
            *n += 1;
        } else if kind.is_file() {
            // No following a link swapped in since the stat, no blocking on a fifo swapped in.
            let Ok(mut f) = std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
                .open(&path)
            else {
                continue;
            };
            let Ok(m) = f.metadata() else { continue };
            if !m.file_type().is_file() {
                continue;
            }
            let mut h = tar::Header::new_gnu();
            h.set_metadata(&m);
            // Exactly the size the header says, even if a workload grows or shrinks the file
            // meanwhile (zeros past a shrunk end), so the archive stays well-formed.
            let size = m.len();
            let data = std::io::Read::take(
                std::io::Read::chain(std::io::Read::take(&mut f, size), std::io::repeat(0)),
                size,
            );
            tar.append_data(&mut h, &rel, data)?;
            *n += 1;
        } else if kind.is_fifo() || kind.is_socket() {
            continue;
        }
    }
    Ok(())
}

/// How often the job server sweeps.
pub const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// The leases whose volume images are on disk, ascending.
fn volume_leases(sb: &SandboxConfig) -> Vec<u64> {
    let Ok(entries) = std::fs::read_dir(sb.dir.join("volumes")) else {
        return Vec::new();
    };
    let mut leases: Vec<u64> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name();
            let name = name.to_str()?;
            name.strip_prefix("lease-")?
                .strip_suffix(".img")?
                .parse()
                .ok()
        })
        .collect();
    leases.sort_unstable();
    leases
}

/// One sweep; returns the leases whose volume was removed.
pub async fn sweep(sb: &SandboxConfig, chain: &dyn ChainView) -> Vec<u64> {
    let mut removed = Vec::new();
    for lease in volume_leases(sb) {
        let expired = match chain.lease(lease).await {
            Ok(None) => true,
            Ok(Some(l)) => l
                .ended_at()
                .is_some_and(|end| l.height >= end.saturating_add(sb.volume_grace_blocks)),
            Err(e) => {
                warn!(error = %e.0, "cannot read leases; no volume is removed this time");
                return removed;
            }
        };
        if !expired {
            continue;
        }
        let (image, dir) = (sb.volume_image(lease), sb.volume(lease));
        match tokio::task::spawn_blocking(move || unet_sandbox::volume::remove(&image, &dir)).await
        {
            Ok(Ok(())) => {
                info!(lease, "lease volume removed after its grace period");
                removed.push(lease);
            }
            Ok(Err(e)) => warn!(lease, error = %e, "lease volume not removed"),
            Err(_) => {}
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::server::ChainUnavailable;
    use futures::future::BoxFuture;
    use std::collections::HashMap;
    use unet_api::market::LeaseState;
    use unet_renter::lease::LeaseInfo;

    struct Chain(HashMap<u64, LeaseInfo>);

    impl ChainView for Chain {
        fn chain_id(&self) -> BoxFuture<'_, Result<u64, ChainUnavailable>> {
            Box::pin(async { Ok(1) })
        }
        fn lease(&self, id: u64) -> BoxFuture<'_, Result<Option<LeaseInfo>, ChainUnavailable>> {
            let l = self.0.get(&id).cloned();
            Box::pin(async move { Ok(l) })
        }
    }

    fn lease(id: u64, open: bool, closed_at: Option<u64>, end: u64) -> LeaseInfo {
        LeaseInfo {
            id,
            renter: String::new(),
            chips: Vec::new(),
            status: if open {
                LeaseState::Open
            } else {
                LeaseState::Closed
            },
            close_reason: None,
            closed_at,
            end,
            height: 1_000,
        }
    }

    #[tokio::test]
    async fn volumes_go_after_their_lease_plus_the_grace_period_and_never_in_use() {
        let dir = tempfile::tempdir().unwrap();
        let sb = SandboxConfig {
            dir: dir.path().join("sandbox"),
            volume_mib: 8,
            volume_grace_blocks: 100,
            ..SandboxConfig::for_jobs_dir(dir.path())
        };
        // Leases 1-7 each leave a volume image behind (mounted once, then released).
        for l in 1..=7 {
            drop(sb.mount_volume(l).unwrap());
            assert!(sb.volume_image(l).exists());
        }
        // The chain is at height 1000; the grace is 100 blocks.
        let chain = Chain(HashMap::from([
            (1, lease(1, true, None, 5_000)),       // serving
            (2, lease(2, false, Some(950), 5_000)), // closed 50 blocks ago: in its grace
            (3, lease(3, false, Some(900), 5_000)), // closed 100 blocks ago: gone
            (4, lease(4, true, None, 850)),         // ran out 150 blocks ago: gone
            (5, lease(5, true, None, 950)),         // ran out 50 blocks ago: in its grace
            (7, lease(7, false, Some(10), 5_000)),  // long closed, but a workload uses it
        ]));
        // Lease 6 is unknown to the chain: nobody can claim its volume.
        let in_use = sb.mount_volume(7).unwrap();
        assert_eq!(sweep(&sb, &chain).await, vec![3, 4, 6]);
        for (l, kept) in [
            (1, true),
            (2, true),
            (3, false),
            (4, false),
            (5, true),
            (6, false),
        ] {
            assert_eq!(sb.volume_image(l).exists(), kept, "lease {l}");
            assert_eq!(sb.volume(l).exists(), kept, "lease {l}");
        }
        assert!(sb.volume_image(7).exists());
        drop(in_use);
        assert_eq!(sweep(&sb, &chain).await, vec![7]);
        assert!(!sb.volume_image(7).exists());
    }
}
