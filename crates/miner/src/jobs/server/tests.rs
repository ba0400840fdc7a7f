//! The job server end to end: real HTTP, a fake chain, emulated chips, jobs in runc.

use super::*;
use crate::jobs::{
    auth::{sign_request, H_NONCE},
    JobRequest, Outcome,
};
use crate::soft::{ChipFile, SoftBackend};
use commonware_codec::{Copying, DecodeExt};
use commonware_cryptography::Signer;
use futures::future::BoxFuture;
use serde_json::{json, Value};
use unet_api::market::{CloseReason, LeaseState};
use unet_onnx::{example_model, TensorData, TensorIn};
use unet_poci::{secure_element::DevnetVendorCa, Curve, TrustStore};
use unet_renter::client::JobClient;
use unet_renter::job::{JobState, Limit};
use unet_types::PrivateKey;

pub(crate) const CHAIN: u64 = 77;

pub(crate) struct FakeChain(pub(crate) Mutex<HashMap<u64, LeaseInfo>>);

impl ChainView for FakeChain {
    fn chain_id(&self) -> BoxFuture<'_, Result<u64, ChainUnavailable>> {
        Box::pin(async { Ok(CHAIN) })
    }
    fn lease(&self, id: u64) -> BoxFuture<'_, Result<Option<LeaseInfo>, ChainUnavailable>> {
        let l = self.0.lock().unwrap().get(&id).cloned();
        Box::pin(async move { Ok(l) })
    }
}

pub(crate) fn key(seed: u8) -> PrivateKey {
    PrivateKey::decode(Copying(&[seed; 32][..])).unwrap()
}

pub(crate) struct Fixture {
    pub(crate) _dir: tempfile::TempDir,
    pub(crate) url: String,
    pub(crate) chain: Arc<FakeChain>,
    pub(crate) files: Vec<ChipFile>,
    pub(crate) server: JobServer,
}

pub(crate) async fn fixture(workers: usize, queue: usize) -> Fixture {
    fixture_with(workers, queue, |_| {}).await
}

/// [`fixture`] with `tweak` applied to the job server's configuration.
pub(crate) async fn fixture_with(
    workers: usize,
    queue: usize,
    tweak: impl FnOnce(&mut JobsConfig),
) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let chips_dir = dir.path().join("chips");
    std::fs::create_dir_all(&chips_dir).unwrap();
    let ca = DevnetVendorCa::from_seed(b"jobs server test").unwrap();
    let files: Vec<ChipFile> = (0..2)
        .map(|i| {
            let f = ChipFile::provision(&ca, "BM1684X", None, Curve::P256).unwrap();
            f.save(&chips_dir.join(format!("{i}.json"))).unwrap();
            f
        })
        .collect();
    let backend = Arc::new(SoftBackend::open(&chips_dir).unwrap());
    let renter = unet_types::hexser::to_hex(&key(1).public_key());
    let mut leases = HashMap::new();
    // Lease 0: open, first chip. Lease 1: closed. Lease 2: a chip of another miner.
    // Lease 3: open but past its end.
    let lease = |id, chips: Vec<String>, status: LeaseState, end| LeaseInfo {
        id,
        renter: renter.clone(),
        chips,
        status,
        close_reason: (status == LeaseState::Closed).then_some(CloseReason::Renter),
        closed_at: (status == LeaseState::Closed).then_some(40),
        end,
        height: 50,
    };
    leases.insert(
        0,
        lease(0, vec![files[0].chip_id.clone()], LeaseState::Open, 100),
    );
    leases.insert(
        1,
        lease(1, vec![files[1].chip_id.clone()], LeaseState::Closed, 100),
    );
    leases.insert(
        2,
        lease(2, vec![hex::encode([7u8; 32])], LeaseState::Open, 100),
    );
    leases.insert(
        3,
        lease(3, vec![files[1].chip_id.clone()], LeaseState::Open, 50),
    );
    let chain = Arc::new(FakeChain(Mutex::new(leases)));
    let mut cfg = JobsConfig::new("127.0.0.1:0".parse().unwrap(), dir.path().join("jobs"));
    // Jobs run under runc, which needs a sandbox dir whose ancestors others may traverse.
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
    }
    cfg.sandbox.dir = dir.path().join("sandbox");
    cfg.workers = workers;
    cfg.queue = queue;
    tweak(&mut cfg);
    let server = JobServer::start(cfg, backend, chain.clone()).await.unwrap();
    Fixture {
        url: format!("http://{}", server.local_addr),
        server,
        _dir: dir,
        chain,
        files,
    }
}

fn exec_req(lease: u64, argv: &[&str], limits: ExecLimits) -> JobRequest {
    JobRequest {
        lease,
        chip: None,
        salt: None,
        job: JobSpec::Exec {
            argv: argv.iter().map(|s| s.to_string()).collect(),
            limits,
            image: None,
        },
    }
}

fn device_key(f: &ChipFile) -> String {
    hex::encode(&f.open().unwrap().0.public_key().sec1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_and_onnx_jobs_return_results_with_chip_receipts() {
    let fx = fixture(2, 8).await;
    let c = JobClient::new(&fx.url, key(1), CHAIN, 0);
    // Exec: output captured, receipt by the lease's chip.
    let v = c
        .submit(&exec_req(0, &["/bin/echo", "hello"], ExecLimits::default()))
        .await
        .unwrap();
    assert_eq!(v.state, JobState::Queued);
    let done = c
        .wait(&v.job_id, Duration::from_secs(30), |_| {})
        .await
        .unwrap();
    let doc = done.check_binding().unwrap();
    assert_eq!(doc.status, Outcome::Ok);
    assert_eq!(doc.exit_code, Some(0));
    assert_eq!(doc.stdout_b64.as_deref(), Some("aGVsbG8K")); // "hello\n"
    assert_eq!(doc.chip_id, fx.files[0].chip_id);
    let r = done.receipt.clone().unwrap();
    assert_eq!((r.chain_id, r.lease_id), (CHAIN, 0));
    r.verify_signature(
        "vendor-x509",
        &device_key(&fx.files[0]),
        &TrustStore::new(),
        0,
    )
    .unwrap();
    // The same body again is the same job, already done.
    let again = c
        .submit(&exec_req(0, &["/bin/echo", "hello"], ExecLimits::default()))
        .await
        .unwrap();
    assert_eq!(again, done);

    // ONNX inference.
    use base64::Engine as _;
    let req = JobRequest {
        lease: 0,
        chip: Some(fx.files[0].chip_id.to_uppercase()),
        salt: None,
        job: JobSpec::Onnx {
            model: base64::engine::general_purpose::STANDARD.encode(example_model()),
            inputs: vec![TensorIn {
                name: Some("x".into()),
                dtype: "f32".into(),
                shape: vec![1, 3],
                data: vec![json!(1.0), json!(2.0), json!(3.0)],
            }],
            wall_ms: None,
        },
    };
    let v = c.submit(&req).await.unwrap();
    let done = c
        .wait(&v.job_id, Duration::from_secs(30), |_| {})
        .await
        .unwrap();
    let doc = done.check_binding().unwrap();
    assert_eq!(doc.status, Outcome::Ok, "{doc:?}");
    let out = doc.outputs.unwrap();
    assert_eq!(out[0].data, TensorData::F32(vec![22.5, 27.0]));
    done.receipt
        .unwrap()
        .verify_signature(
            "vendor-x509",
            &device_key(&fx.files[0]),
            &TrustStore::new(),
            0,
        )
        .unwrap();
    // Tampering with the result breaks the binding.
    let mut forged = c.get(&v.job_id).await.unwrap();
    forged.result_json = forged.result_json.map(|t| t.replace("22.5", "23.5"));
    assert_eq!(
        forged.check_binding().unwrap_err(),
        "receipt result_hash is not the hash of result_json"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_are_enforced_and_reported() {
    let fx = fixture(1, 8).await;
    let c = JobClient::new(&fx.url, key(1), CHAIN, 0);
    let t = std::time::Instant::now();
    let v = c
        .submit(&exec_req(
            0,
            &["/bin/sleep", "30"],
            ExecLimits {
                wall_ms: 500,
                ..Default::default()
            },
        ))
        .await
        .unwrap();
    let done = c
        .wait(&v.job_id, Duration::from_secs(20), |_| {})
        .await
        .unwrap();
    let doc = done.check_binding().unwrap();
    assert_eq!(doc.status, Outcome::LimitExceeded);
    assert_eq!(doc.limit, Some(Limit::WallTime));
    assert!(t.elapsed() < Duration::from_secs(10));
    let text = done.result_json.unwrap();
    assert!(
        text.contains(r#""status":"limit_exceeded","limit":"wall_time""#),
        "{text}"
    );
    // Limits above the miner's maximum are refused up front.
    let err = c
        .submit(&exec_req(
            0,
            &["/bin/true"],
            ExecLimits {
                wall_ms: 10_000_000,
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("bad_job"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals() {
    let fx = fixture(1, 1).await;
    let echo = |lease| exec_req(lease, &["/bin/echo"], ExecLimits::default());
    // Signed by someone other than the renter.
    let other = JobClient::new(&fx.url, key(2), CHAIN, 0);
    let err = other.submit(&echo(0)).await.unwrap_err();
    assert_eq!(err.code(), Some("not_renter"), "{err}");
    // Signed for another chain.
    let wrong_chain = JobClient::new(&fx.url, key(1), CHAIN + 1, 0);
    assert_eq!(
        wrong_chain.submit(&echo(0)).await.unwrap_err().code(),
        Some("bad_signature")
    );
    // Closed, expired, unknown leases; a chip of another miner.
    for (lease, code) in [
        (1, "lease_closed"),
        (3, "lease_expired"),
        (9, "unknown_lease"),
        (2, "chip_not_managed"),
    ] {
        let c = JobClient::new(&fx.url, key(1), CHAIN, lease);
        let err = c.submit(&echo(lease)).await.unwrap_err();
        assert_eq!(err.code(), Some(code), "lease {lease}: {err}");
    }
    let c = JobClient::new(&fx.url, key(1), CHAIN, 0);
    // A chip not in the lease; a body naming another lease.
    let mut r = echo(0);
    r.chip = Some(fx.files[1].chip_id.clone());
    assert_eq!(
        c.submit(&r).await.unwrap_err().code(),
        Some("chip_not_in_lease")
    );
    assert_eq!(
        c.submit(&echo(3)).await.unwrap_err().code(),
        Some("bad_job")
    );
    // Unknown job.
    assert_eq!(
        c.get(&"ab".repeat(32)).await.unwrap_err().code(),
        Some("unknown_job")
    );
    assert_eq!(
        c.get("nothex").await.unwrap_err().code(),
        Some("unknown_job")
    );

    // A replayed request (same headers, same body) is refused.
    let body = serde_json::to_vec(&echo(0)).unwrap();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let headers = sign_request(&key(1), CHAIN, 0, "POST", "/v1/jobs", &body, now);
    let http = reqwest::Client::new();
    let send = || {
        let mut r = http.post(format!("{}/v1/jobs", fx.url)).body(body.clone());
        for (k, v) in &headers {
            r = r.header(*k, v);
        }
        r.send()
    };
    assert_eq!(send().await.unwrap().status().as_u16(), 202);
    let replay = send().await.unwrap();
    assert_eq!(replay.status().as_u16(), 409);
    let v: Value = replay.json().await.unwrap();
    assert_eq!(v["error"]["code"], "replayed_nonce");
    // No auth headers at all.
    let bare = http
        .post(format!("{}/v1/jobs", fx.url))
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(bare.status().as_u16(), 401);
    let v: Value = bare.json().await.unwrap();
    assert_eq!(v["error"]["code"], "bad_auth_header");
    let _ = H_NONCE;

    // The lease closes on chain: new jobs are refused, results stay readable.
    let v = c.submit(&echo(0)).await.unwrap();
    fx.chain.0.lock().unwrap().get_mut(&0).unwrap().status = LeaseState::Closed;
    assert_eq!(
        c.submit(&echo(0)).await.unwrap_err().code(),
        Some("lease_closed")
    );
    let done = c
        .wait(&v.job_id, Duration::from_secs(20), |_| {})
        .await
        .unwrap();
    assert_eq!(done.state, JobState::Done);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_refuses_instead_of_waiting() {
    let fx = fixture(1, 1).await;
    let c = JobClient::new(&fx.url, key(1), CHAIN, 0);
    let slow = |salt: &str| {
        let mut r = exec_req(
            0,
            &["/bin/sleep", "2"],
            ExecLimits {
                wall_ms: 5000,
                ..Default::default()
            },
        );
        r.salt = Some(salt.into());
        r
    };
    let first = c.submit(&slow("a")).await.unwrap();
    // Let the worker take the first one, then fill the queue (capacity 1).
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while c.get(&first.job_id).await.unwrap().state != JobState::Running {
        assert!(std::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let second = c.submit(&slow("b")).await.unwrap();
    assert_eq!(second.state, JobState::Queued);
    let err = c.submit(&slow("c")).await.unwrap_err();
    assert_eq!(err.code(), Some("queue_full"), "{err}");
    // Both accepted jobs finish.
    for id in [&first.job_id, &second.job_id] {
        let v = c.wait(id, Duration::from_secs(20), |_| {}).await.unwrap();
        assert_eq!(v.check_binding().unwrap().status, Outcome::Ok);
    }
}
