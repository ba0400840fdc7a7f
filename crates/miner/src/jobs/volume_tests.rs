//! The renter's volume download (`GET /v1/volume`) end to end: real HTTP, a fake chain, a job
//! in runc writing into the volume.

use super::{
    exec::SandboxConfig,
    server::tests::{fixture_with, key, CHAIN},
    JobRequest, JobSpec,
};
use std::{collections::BTreeMap, io::Read, time::Duration};
use unet_renter::{client::JobClient, job::ExecLimits};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renter_downloads_its_volume_and_nothing_beyond_it() {
    let fx = fixture_with(1, 4, |cfg| {
        cfg.sandbox.volume_mib = 8;
        cfg.sandbox.volume_grace_blocks = 5;
    })
    .await;
    let c = JobClient::new(&fx.url, key(1), CHAIN, 0);
    // Before any workload ran there is nothing to download.
    let e = c.download_volume(&mut Vec::new()).await.unwrap_err();
    assert_eq!(e.code(), Some("no_volume"), "{e}");
    let script = "echo data > a.txt; mkdir d; echo nested > d/b; ln -s /etc/passwd link; \
                  ln -s ../../../owner.key up";
    let v = c
        .submit(&JobRequest {
            lease: 0,
            chip: None,
            salt: None,
            job: JobSpec::Exec {
                argv: vec!["/bin/sh".into(), "-c".into(), script.into()],
                limits: ExecLimits::default(),
                image: None,
            },
        })
        .await
        .unwrap();
    let done = c
        .wait(&v.job_id, Duration::from_secs(60), |_| {})
        .await
        .unwrap();
    assert_eq!(done.check_binding().unwrap().exit_code, Some(0));
    // A fifo in the volume (the sandbox refuses mknod; the host makes one) must neither be
    // archived nor make the download wait for a writer.
    let sb = SandboxConfig {
        dir: fx._dir.path().join("sandbox"),
        ..SandboxConfig::for_jobs_dir(fx._dir.path())
    };
    {
        let v = sb.mount_volume(0).unwrap();
        let st = std::process::Command::new("mkfifo")
            .arg(v.dir().join("fifo"))
            .status()
            .unwrap();
        assert!(st.success());
    }

    let mut tar_bytes = Vec::new();
    let n = tokio::time::timeout(Duration::from_secs(30), c.download_volume(&mut tar_bytes))
        .await
        .expect("the download did not finish")
        .unwrap();
    assert_eq!(n as usize, tar_bytes.len());
    let mut entries = BTreeMap::new();
    let mut archive = tar::Archive::new(tar_bytes.as_slice());
    for e in archive.entries().unwrap() {
        let mut e = e.unwrap();
        let path = e.path().unwrap().to_string_lossy().into_owned();
        let what = match e.header().entry_type() {
            tar::EntryType::Symlink => format!("-> {}", e.link_name().unwrap().unwrap().display()),
            tar::EntryType::Directory => "dir".to_string(),
            _ => {
                let mut s = String::new();
                e.read_to_string(&mut s).unwrap();
                s
            }
        };
        entries.insert(path, what);
    }
    let want: BTreeMap<String, String> = [
        ("a.txt", "data\n"),
        ("d", "dir"),
        ("d/b", "nested\n"),
        // Links are archived as links: their targets are never read.
        ("link", "-> /etc/passwd"),
        ("up", "-> ../../../owner.key"),
    ]
    .into_iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(entries, want);

    // Only the lease's renter may download it.
    let other = JobClient::new(&fx.url, key(2), CHAIN, 0);
    let e = other.download_volume(&mut Vec::new()).await.unwrap_err();
    assert_eq!(e.code(), Some("not_renter"), "{e}");
    // Lease 1 closed at height 40; the chain is at 50, past the 5-block grace.
    let closed = JobClient::new(&fx.url, key(1), CHAIN, 1);
    let e = closed.download_volume(&mut Vec::new()).await.unwrap_err();
    assert_eq!(e.code(), Some("volume_gone"), "{e}");
}
