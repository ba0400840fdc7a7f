//! Services and live logs through the job server, on real runc containers: a busybox
//! `httpd` reached through the forwarded port, the attacks (another renter, the workload
//! reaching the miner's loopback), the stops (renter, lease closed), and a job's log
//! followed while it runs. Need root, runc and busybox-static (scripts/ci-deps). Service
//! ports: 23000-23099.

use super::{
    exec::ExecLimits,
    server::tests::{fixture_with, key, Fixture, CHAIN},
    JobRequest, JobSpec,
};
use std::{
    io::{Read, Write},
    net::TcpStream,
    time::{Duration, Instant},
};
use unet_api::market::{CloseReason, LeaseState};
use unet_renter::{
    client::JobClient,
    job::JobState,
    service::{ServiceRequest, ServiceState},
};

async fn service_fixture(ports: (u16, u16)) -> Fixture {
    fixture_with(1, 8, |c| {
        c.services.ports = ports;
        c.services.watch_every = Duration::from_millis(200);
    })
    .await
}

pub(super) async fn upload_example(c: &JobClient) -> String {
    let bb = unet_sandbox::rootfs::find_busybox()
        .unwrap_or_else(|e| panic!("this test needs busybox-static: {e}"));
    let built = unet_sandbox::image::build::example_image(&bb).unwrap();
    c.upload_image(built.archive).await.unwrap().digest
}

/// One HTTP/1.0 GET of `/path` at `endpoint` (`http://HOST:PORT`): the body.
pub(super) fn http_get(endpoint: &str, path: &str) -> std::io::Result<String> {
    let addr = endpoint.trim_start_matches("http://");
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n")?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    match out.split_once("\r\n\r\n") {
        Some((head, body)) if head.starts_with("HTTP/1.") => Ok(body.to_string()),
        _ => Err(std::io::Error::other(format!("not HTTP: {out:?}"))),
    }
}

/// Retries [`http_get`] until the server in the container answers (it starts after the
/// container does).
pub(super) async fn get_when_up(endpoint: &str, path: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (e, p) = (endpoint.to_string(), path.to_string());
        match tokio::task::spawn_blocking(move || http_get(&e, &p))
            .await
            .unwrap()
        {
            Ok(body) if !body.is_empty() => return body,
            r => assert!(Instant::now() < deadline, "{endpoint}{path}: {r:?}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub(super) fn httpd_service(digest: &str, token: &str, probe_port: u16) -> ServiceRequest {
    // The page is written by the service itself from the token the test chose; the probe
    // tries the miner's job port on 127.0.0.1 from inside and records what happened.
    let script = format!(
        "mkdir -p /tmp/www && echo {token} > /tmp/www/index.html && \
         (wget -q -T 2 -O - http://127.0.0.1:{probe_port}/v1/info >/tmp/www/probe.txt 2>&1 \
            && echo REACHED >> /tmp/www/probe.txt || echo refused >> /tmp/www/probe.txt) ; \
         echo service up; exec httpd -f -p 8080 -h /tmp/www"
    );
    ServiceRequest {
        lease: 0,
        chip: None,
        image: digest.to_string(),
        argv: vec!["/bin/sh".into(), "-c".into(), script],
        env: vec!["GREETING=hi".into()],
        port: 8080,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_answers_through_its_endpoint_until_the_lease_closes() {
    let fx = service_fixture((23000, 23009)).await;
    let miner_port: u16 = fx.url.rsplit_once(':').unwrap().1.parse().unwrap();
    let c = JobClient::new(&fx.url, key(1), CHAIN, 0);
    let digest = upload_example(&c).await;

    let v = c
        .service_start(&httpd_service(&digest, "page-7f3a", miner_port))
        .await
        .unwrap();
    assert_eq!(v.state, ServiceState::Running);
    assert_eq!(v.image, digest);
    assert!(
        v.endpoint.starts_with("http://127.0.0.1:230"),
        "{}",
        v.endpoint
    );
    assert_eq!(get_when_up(&v.endpoint, "/index.html").await, "page-7f3a\n");
    // The workload could not reach the miner's job port on the host's loopback.
    let probe = get_when_up(&v.endpoint, "/probe.txt").await;
    assert!(probe.ends_with("refused\n"), "{probe}");
    assert!(!probe.contains("chain_id"), "{probe}");

    let st = c.service_status().await.unwrap();
    assert_eq!(
        (st.state, &st.endpoint),
        (ServiceState::Running, &v.endpoint)
    );
    // Its output so far, through the log.
    let log = c.logs(None, 0).await.unwrap();
    use base64::Engine as _;
    let text = base64::engine::general_purpose::STANDARD
        .decode(&log.data_b64)
        .unwrap();
    assert!(
        String::from_utf8_lossy(&text).contains("service up"),
        "{log:?}"
    );
    assert!(!log.done);

    // One service per lease.
    let again = c
        .service_start(&httpd_service(&digest, "x", miner_port))
        .await
        .unwrap_err();
    assert_eq!(again.code(), Some("service_running"), "{again}");

    // Another key is not the lease's renter: it can neither start, read nor stop it.
    let mallory = JobClient::new(&fx.url, key(9), CHAIN, 0);
    for e in [
        mallory
            .service_start(&httpd_service(&digest, "x", miner_port))
            .await
            .unwrap_err(),
        mallory.service_stop().await.unwrap_err(),
        mallory.service_status().await.unwrap_err(),
    ] {
        assert_eq!(e.code(), Some("not_renter"), "{e}");
    }
    assert_eq!(get_when_up(&v.endpoint, "/index.html").await, "page-7f3a\n");

    // The renter stops it: the port refuses; a new one may start.
    let stopped = c.service_stop().await.unwrap();
    assert_eq!(stopped.state, ServiceState::Stopped);
    assert_eq!(stopped.stopped_because.as_deref(), Some("renter"));
    let ep = v.endpoint.clone();
    let refused = tokio::task::spawn_blocking(move || http_get(&ep, "/index.html"))
        .await
        .unwrap();
    assert!(refused.is_err(), "{refused:?}");
    let v2 = c
        .service_start(&httpd_service(&digest, "second", miner_port))
        .await
        .unwrap();
    assert_eq!(get_when_up(&v2.endpoint, "/index.html").await, "second\n");

    // The lease closes on chain: the watcher stops the service and its port refuses.
    {
        let mut leases = fx.chain.0.lock().unwrap();
        let l = leases.get_mut(&0).unwrap();
        l.status = LeaseState::Closed;
        l.close_reason = Some(CloseReason::DepositExhausted);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    let st = loop {
        let st = c.service_status().await.unwrap();
        if st.state == ServiceState::Stopped || Instant::now() > deadline {
            break st;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(st.state, ServiceState::Stopped, "{st:?}");
    assert_eq!(st.stopped_because.as_deref(), Some("lease_closed"));
    let ep = v2.endpoint.clone();
    assert!(tokio::task::spawn_blocking(move || TcpStream::connect(
        ep.trim_start_matches("http://")
    ))
    .await
    .unwrap()
    .is_err());
    // The container is gone, and a closed lease cannot start another.
    let rt = unet_sandbox::Runtime {
        runc: unet_sandbox::runner::find_runc().unwrap(),
        state_root: fx._dir.path().join("sandbox/runc"),
    };
    assert!(rt.list("unet-svc-").is_empty());
    let e = c
        .service_start(&httpd_service(&digest, "x", miner_port))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("lease_closed"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_service_requests_are_refused_with_clear_errors() {
    let fx = service_fixture((23010, 23019)).await;
    let c = JobClient::new(&fx.url, key(1), CHAIN, 0);
    let digest = upload_example(&c).await;
    let base = httpd_service(&digest, "x", 1);
    let cases = [
        (
            ServiceRequest {
                port: 80,
                ..base.clone()
            },
            "bad_job",
            "below 1024",
        ),
        (
            ServiceRequest {
                image: "busybox:latest".into(),
                ..base.clone()
            },
            "bad_job",
            "not pinned",
        ),
        (
            ServiceRequest {
                image: format!("sha256:{}", "ab".repeat(32)),
                ..base.clone()
            },
            "unknown_image",
            "not uploaded",
        ),
        (
            ServiceRequest {
                env: vec!["NO_EQUALS".into()],
                ..base.clone()
            },
            "bad_job",
            "NAME=VALUE",
        ),
        (
            ServiceRequest {
                lease: 3,
                ..base.clone()
            },
            "bad_job",
            "the body names lease 3",
        ),
        (
            ServiceRequest {
                argv: vec!["/nonexistent".into()],
                ..base.clone()
            },
            "service_failed",
            "did not start",
        ),
    ];
    for (req, code, text) in cases {
        let e = c.service_start(&req).await.unwrap_err();
        assert_eq!(e.code(), Some(code), "{e}");
        assert!(e.to_string().contains(text), "{e}");
    }
    // Nothing runs after a failed start; status says why.
    let st = c.service_status().await.unwrap();
    assert_eq!(st.state, ServiceState::Stopped);
    assert_eq!(st.stopped_because.as_deref(), Some("start_failed"));
    // A lease without a service, and a bad log offset.
    let other = JobClient::new(&fx.url, key(1), CHAIN, 3);
    assert_eq!(
        other.service_status().await.unwrap_err().code(),
        Some("no_service")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jobs_log_streams_while_it_runs_and_equals_its_output() {
    let fx = service_fixture((23020, 23029)).await;
    let c = JobClient::new(&fx.url, key(1), CHAIN, 0);
    let req = JobRequest {
        lease: 0,
        chip: None,
        salt: None,
        job: JobSpec::Exec {
            argv: vec![
                "/bin/sh".into(),
                "-c".into(),
                "for i in 1 2 3 4 5 6; do echo line $i; sleep 0.5; done".into(),
            ],
            limits: ExecLimits::default(),
            image: None,
        },
    };
    let v = c.submit(&req).await.unwrap();
    let mut first_seen_while = None;
    let mut text = Vec::new();
    let mut offset = 0u64;
    use base64::Engine as _;
    loop {
        let chunk = c.logs(Some(&v.job_id), offset).await.unwrap();
        let data = base64::engine::general_purpose::STANDARD
            .decode(&chunk.data_b64)
            .unwrap();
        if !data.is_empty() && first_seen_while.is_none() {
            first_seen_while = Some(c.get(&v.job_id).await.unwrap().state);
        }
        assert_eq!(chunk.offset, offset);
        text.extend_from_slice(&data);
        offset += data.len() as u64;
        if chunk.done {
            break;
        }
    }
    // The first lines arrived while the job was still running.
    assert_eq!(first_seen_while, Some(JobState::Running));
    let done = c
        .wait(&v.job_id, Duration::from_secs(30), |_| {})
        .await
        .unwrap();
    let doc = done.check_binding().unwrap();
    let stdout = base64::engine::general_purpose::STANDARD
        .decode(doc.stdout_b64.unwrap())
        .unwrap();
    assert_eq!(text, stdout);
    assert_eq!(
        String::from_utf8(text).unwrap(),
        (1..=6).map(|i| format!("line {i}\n")).collect::<String>()
    );
    // After the end the log still reads (from the live log, then from the result).
    let mut all = Vec::new();
    c.follow_logs(Some(&v.job_id), |b| all.extend_from_slice(b))
        .await
        .unwrap();
    assert_eq!(all, stdout);
    // A job id that is not 64 hex digits never reaches a file name (the path would lead to
    // the miner's state.json); an unknown one is unknown.
    for bad in ["..%2F..%2Fstate", "state", &"g".repeat(64)] {
        let e = c.logs(Some(bad), 0).await.unwrap_err();
        assert!(
            matches!(e.code(), Some("bad_job") | Some("bad_signature")),
            "{bad}: {e}"
        );
    }
    let e = c.logs(Some(&"ab".repeat(32)), 0).await.unwrap_err();
    assert_eq!(e.code(), Some("unknown_job"), "{e}");
    // Another renter cannot read it.
    let mallory = JobClient::new(&fx.url, key(9), CHAIN, 0);
    assert_eq!(
        mallory.logs(Some(&v.job_id), 0).await.unwrap_err().code(),
        Some("not_renter")
    );
}

async fn wait_stopped(c: &JobClient) -> unet_renter::service::ServiceView {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let st = c.service_status().await.unwrap();
        if st.state == ServiceState::Stopped || Instant::now() > deadline {
            return st;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_stops_when_it_exits_and_when_the_miner_shuts_down() {
    let fx = service_fixture((23030, 23039)).await;
    let c = JobClient::new(&fx.url, key(1), CHAIN, 0);
    let digest = upload_example(&c).await;
    // Its command exits: stopped, `exited`, with the status.
    let exits = ServiceRequest {
        argv: vec!["/bin/sh".into(), "-c".into(), "sleep 0.5; exit 4".into()],
        ..httpd_service(&digest, "x", 1)
    };
    let v = c.service_start(&exits).await.unwrap();
    let st = wait_stopped(&c).await;
    assert_eq!(st.state, ServiceState::Stopped, "{st:?}");
    assert_eq!(st.stopped_because.as_deref(), Some("exited"));
    assert_eq!(st.exit_code, Some(4));
    let ep = v.endpoint.clone();
    assert!(tokio::task::spawn_blocking(move || http_get(&ep, "/"))
        .await
        .unwrap()
        .is_err());
    // The miner shuts down: its services stop, their ports refuse, no container is left.
    let v = c
        .service_start(&httpd_service(&digest, "up", 1))
        .await
        .unwrap();
    assert_eq!(get_when_up(&v.endpoint, "/index.html").await, "up\n");
    fx.server.stop_services().await;
    let st = c.service_status().await.unwrap();
    assert_eq!(st.state, ServiceState::Stopped);
    assert_eq!(st.stopped_because.as_deref(), Some("miner_shutdown"));
    let ep = v.endpoint.clone();
    assert!(
        tokio::task::spawn_blocking(move || http_get(&ep, "/index.html"))
            .await
            .unwrap()
            .is_err()
    );
    let rt = unet_sandbox::Runtime {
        runc: unet_sandbox::runner::find_runc().unwrap(),
        state_root: fx._dir.path().join("sandbox/runc"),
    };
    assert!(rt.list("unet-svc-").is_empty());
}

/// A flood of connections cannot take more than `max_connections` forwarding slots: past
/// the cap a connection is closed at once, and the slot comes back when one ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_connections_are_capped() {
    let fx = fixture_with(1, 8, |c| {
        c.services.ports = (23040, 23049);
        c.services.max_connections = 1;
    })
    .await;
    let c = JobClient::new(&fx.url, key(1), CHAIN, 0);
    let digest = upload_example(&c).await;
    let v = c
        .service_start(&httpd_service(&digest, "capped", 1))
        .await
        .unwrap();
    assert_eq!(get_when_up(&v.endpoint, "/index.html").await, "capped\n");
    let addr = v.endpoint.trim_start_matches("http://").to_string();
    let verdict = tokio::task::spawn_blocking(move || {
        // The first connection holds the only slot (it sends nothing): it stays open (a read
        // times out). The slot of the page fetched above may take a moment to come back;
        // until then a new connection is closed at once (EOF), so try again.
        let mut held = None;
        for _ in 0..50 {
            let mut c = TcpStream::connect(&addr).unwrap();
            c.set_read_timeout(Some(Duration::from_millis(300)))
                .unwrap();
            if c.read(&mut [0u8; 1]).is_err() {
                held = Some(c);
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let held = held.expect("a connection that holds the slot");
        // The second is accepted by the listener and closed at once: EOF, no page.
        let mut second = TcpStream::connect(&addr).unwrap();
        second
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let _ = write!(second, "GET /index.html HTTP/1.0\r\n\r\n");
        let mut got = String::new();
        let _ = second.read_to_string(&mut got);
        drop(held);
        got
    })
    .await
    .unwrap();
    assert!(!verdict.contains("capped"), "{verdict:?}");
    // Once the first ends, the slot is free again.
    assert_eq!(get_when_up(&v.endpoint, "/index.html").await, "capped\n");
}

/// A lease the chain reports past its end (not yet settled closed): the watcher stops its
/// service as `lease_expired`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_stops_when_its_lease_reaches_its_end() {
    let fx = service_fixture((23050, 23059)).await;
    let c = JobClient::new(&fx.url, key(1), CHAIN, 0);
    let digest = upload_example(&c).await;
    let v = c
        .service_start(&httpd_service(&digest, "until-the-end", 1))
        .await
        .unwrap();
    assert_eq!(
        get_when_up(&v.endpoint, "/index.html").await,
        "until-the-end\n"
    );
    {
        let mut leases = fx.chain.0.lock().unwrap();
        let l = leases.get_mut(&0).unwrap();
        l.height = l.end;
    }
    let st = wait_stopped(&c).await;
    assert_eq!(st.state, ServiceState::Stopped, "{st:?}");
    assert_eq!(st.stopped_because.as_deref(), Some("lease_expired"));
    let ep = v.endpoint.clone();
    assert!(
        tokio::task::spawn_blocking(move || http_get(&ep, "/index.html"))
            .await
            .unwrap()
            .is_err()
    );
}
