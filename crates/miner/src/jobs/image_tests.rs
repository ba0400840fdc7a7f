//! Jobs on images through the job server: an uploaded archive, a registry pull (a real
//! `docker-registry` on 127.0.0.1), the receipt binding the image digest, and the attacks:
//! another lease using an uploaded image, a malicious image, an oversized upload, a second
//! renter reading the first one's volume. Need root, runc and busybox-static; the registry
//! test needs Debian's `docker-registry` (scripts/ci-deps installs them all).

use super::{
    exec::ExecLimits,
    server::{
        tests::{fixture, fixture_with, key, Fixture, CHAIN},
        LeaseInfo,
    },
    JobRequest, JobSpec, JobView, Outcome, ResultDoc,
};
use base64::Engine as _;
use std::time::Duration;
use unet_poci::TrustStore;
use unet_renter::client::JobClient;

fn example() -> unet_sandbox::image::build::BuiltImage {
    let bb = unet_sandbox::rootfs::find_busybox()
        .unwrap_or_else(|e| panic!("this test needs busybox-static: {e}"));
    unet_sandbox::image::build::example_image(&bb).unwrap()
}

fn image_job(lease: u64, image: &str, argv: &[&str]) -> JobRequest {
    JobRequest {
        lease,
        chip: None,
        salt: None,
        job: JobSpec::Exec {
            argv: argv.iter().map(|s| s.to_string()).collect(),
            limits: ExecLimits::default(),
            image: Some(image.into()),
        },
    }
}

async fn run(c: &JobClient, req: &JobRequest) -> (JobView, ResultDoc) {
    let v = c.submit(req).await.unwrap();
    let done = c
        .wait(&v.job_id, Duration::from_secs(60), |_| {})
        .await
        .unwrap();
    let doc = done.check_binding().unwrap();
    (done, doc)
}

fn stdout(doc: &ResultDoc) -> String {
    let b = base64::engine::general_purpose::STANDARD
        .decode(doc.stdout_b64.as_deref().unwrap_or(""))
        .unwrap();
    String::from_utf8_lossy(&b).into_owned()
}

/// Lease 4: open, on the second chip, rented by key(2).
fn second_renter(fx: &Fixture) -> JobClient {
    let renter = unet_types::hexser::to_hex(&commonware_cryptography::Signer::public_key(&key(2)));
    fx.chain.0.lock().unwrap().insert(
        4,
        LeaseInfo {
            id: 4,
            renter,
            chips: vec![fx.files[1].chip_id.clone()],
            status: unet_api::market::LeaseState::Open,
            close_reason: None,
            closed_at: None,
            end: 100,
            height: 50,
        },
    );
    JobClient::new(&fx.url, key(2), CHAIN, 4)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_uploaded_image_runs_and_the_receipt_binds_its_digest() {
    let fx = fixture(2, 8).await;
    let c = JobClient::new(&fx.url, key(1), CHAIN, 0);
    let built = example();
    let answer = c.upload_image(built.archive.clone()).await.unwrap();
    let digest = answer.digest.clone();
    assert_eq!(digest, built.digest);
    assert_eq!(answer.config["cmd"][0], "/bin/sh");
    // No argv: the image's Cmd, whose /bin/sh runs echo.
    let (done, doc) = run(&c, &image_job(0, &digest, &[])).await;
    assert_eq!(doc.status, Outcome::Ok, "{doc:?}");
    assert_eq!(stdout(&doc), "hello from the example image\n");
    assert_eq!(doc.image.as_deref(), Some(digest.as_str()));
    doc.check_image(Some(&digest)).unwrap();
    // The binding: a result claiming another image fails the renter's check, and editing
    // the image in the result breaks the receipt.
    let other = format!("sha256:{}", "0".repeat(64));
    assert!(doc.check_image(Some(&other)).is_err());
    assert!(doc.check_image(None).is_err());
    let mut forged = done.clone();
    forged.result_json = forged.result_json.map(|t| t.replace(&digest, &other));
    assert!(forged.check_binding().is_err());
    let key_hex = hex::encode(&fx.files[0].open().unwrap().0.public_key().sec1);
    done.receipt
        .unwrap()
        .verify_signature("vendor-x509", &key_hex, &TrustStore::new(), 0)
        .unwrap();
    // A command of the renter's on the image.
    let (_, doc) = run(
        &c,
        &image_job(0, &digest, &["/bin/sh", "-c", "echo $PATH; id -u"]),
    )
    .await;
    assert_eq!(stdout(&doc), "/bin\n0\n", "{doc:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn images_and_volumes_stay_with_their_lease() {
    let fx = fixture(2, 8).await;
    let a = JobClient::new(&fx.url, key(1), CHAIN, 0);
    let b = second_renter(&fx);
    let digest = a.upload_image(example().archive).await.unwrap().digest;
    // Another lease cannot run an image it did not upload, even knowing the digest.
    let err = b.submit(&image_job(4, &digest, &[])).await.unwrap_err();
    assert_eq!(err.code(), Some("unknown_image"), "{err}");
    // Unpinned references are refused.
    let err = a
        .submit(&image_job(0, "docker.io/library/busybox:latest", &[]))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("bad_job"), "{err}");
    // A writes a secret into its volume; B looks for it everywhere it can.
    let (_, doc) = run(
        &a,
        &image_job(
            0,
            &digest,
            &["/bin/sh", "-c", "echo LEASE0-SECRET > /work/secret"],
        ),
    )
    .await;
    assert_eq!(doc.status, Outcome::Ok, "{doc:?}");
    let digest_b = b.upload_image(example().archive).await.unwrap().digest;
    let (_, doc) = run(
        &b,
        &image_job(
            4,
            &digest_b,
            &[
                "/bin/sh",
                "-c",
                "cat /work/secret; cat /proc/*/root/work/secret; ls /work; \
                 cat ../volumes/lease-0/secret; echo done",
            ],
        ),
    )
    .await;
    let out = stdout(&doc);
    assert!(out.ends_with("done\n"), "{doc:?}");
    assert!(!out.contains("LEASE0-SECRET"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malicious_and_oversized_images_are_refused() {
    let fx = fixture_with(1, 4, |cfg| cfg.max_image_bytes = 4 << 20).await;
    let c = JobClient::new(&fx.url, key(1), CHAIN, 0);
    // A layer with a device node and one escaping with ../
    for (path, kind) in [
        ("dev/mem", tar::EntryType::Char),
        ("../../pwned", tar::EntryType::Regular),
    ] {
        let mut h = tar::Header::new_gnu();
        h.as_old_mut().name[..path.len()].copy_from_slice(path.as_bytes());
        h.set_entry_type(kind);
        h.set_mode(0o644);
        h.set_size(0);
        h.set_cksum();
        let mut t = tar::Builder::new(Vec::new());
        t.append(&h, std::io::empty()).unwrap();
        let built = unet_sandbox::image::build::image_archive(
            &[unet_sandbox::image::build::LayerBlob {
                tar: t.into_inner().unwrap(),
                gzip: true,
            }],
            serde_json::json!({}),
        )
        .unwrap();
        let err = c.upload_image(built.archive).await.unwrap_err();
        assert_eq!(err.code(), Some("bad_image"), "{err}");
        assert!(err.to_string().contains("refused"), "{err}");
    }
    // Past the upload cap: refused before it is read whole.
    let err = c.upload_image(vec![0u8; 5 << 20]).await.unwrap_err();
    assert!(
        matches!(
            err,
            unet_renter::client::RenterError::Refused { status: 413, .. }
        ),
        "{err}"
    );
}

/// Debian's `docker-registry` on 127.0.0.1:`port`, storing under `dir`; killed on drop.
struct Registry(std::process::Child);

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn registry(dir: &std::path::Path, port: u16) -> Registry {
    let cfg = dir.join("registry.yml");
    std::fs::write(
        &cfg,
        format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n\
             http:\n  addr: 127.0.0.1:{port}\n",
            dir.join("data").display()
        ),
    )
    .unwrap();
    let child = std::process::Command::new("docker-registry")
        .arg("serve")
        .arg(&cfg)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("this test needs Debian's docker-registry (scripts/ci-deps): {e}")
        });
    let r = Registry(child);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "the registry did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    r
}

/// An image built here, pushed to a real local registry with oci-client, pulled by the
/// miner pinned by digest, runs; a digest the registry does not have fails the job.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_pulled_from_a_registry_runs() {
    const PORT: u16 = 22501;
    let host = format!("127.0.0.1:{PORT}");
    let dir = tempfile::tempdir().unwrap();
    let _reg = registry(dir.path(), PORT);
    let built = example();
    let name = format!("{host}/unet/example:1");
    super::pull::push(&built, &name, std::slice::from_ref(&host))
        .await
        .unwrap();
    // The renter pins the tag to the digest the registry gives.
    let digest = super::pull::resolve_digest(&name, std::slice::from_ref(&host))
        .await
        .unwrap();
    assert_eq!(digest, built.digest);
    let h2 = host.clone();
    let fx = fixture_with(1, 4, move |cfg| cfg.insecure_registries = vec![h2]).await;
    let c = JobClient::new(&fx.url, key(1), CHAIN, 0);
    let pinned = format!("{host}/unet/example@{digest}");
    let (_, doc) = run(
        &c,
        &image_job(0, &pinned, &["/bin/sh", "-c", "echo pulled"]),
    )
    .await;
    assert_eq!(doc.status, Outcome::Ok, "{doc:?}");
    assert_eq!(stdout(&doc), "pulled\n");
    assert_eq!(doc.image.as_deref(), Some(digest.as_str()));
    doc.check_image(Some(&pinned)).unwrap();
    // Pinned to a digest the registry does not have: the job fails, naming the pull.
    let missing = format!("{host}/unet/example@sha256:{}", "1".repeat(64));
    let (_, doc) = run(&c, &image_job(0, &missing, &[])).await;
    assert_eq!(doc.status, Outcome::Failed, "{doc:?}");
    assert!(
        doc.error.as_deref().unwrap_or("").contains("image"),
        "{doc:?}"
    );
    assert_eq!(doc.image, None);
}
