//! The provider's egress policy reaching the workloads: with `[network] egress = "on"` a
//! batch job and a service get the sandbox's egress network (namespace joined by path,
//! default route via their veth, the provider's resolvers), taken down when they end; with
//! egress off nothing of it. Each test re-executes itself in a private network namespace
//! (`unshare -n`), so the miner's nftables table and `ip_forward` never touch the host's.
//! Needs root, runc, busybox-static, nftables and iproute2 (scripts/ci-deps).

use super::exec::{self, ExecLimits, RunsOn, SandboxConfig};
use crate::{jobs::server::JobsConfig, provider::ProviderConfig};
use std::{path::Path, process::Command, sync::Arc};

const INNER: &str = "UNET_MINER_EGRESS_TEST_INNER";

fn inside(test: &str) -> bool {
    unet_sandbox::netns::rerun_in_private_netns(test, INNER)
}

fn sandbox(dir: &Path, provider: &str) -> SandboxConfig {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut jc = JobsConfig::new("127.0.0.1:0".parse().unwrap(), dir.join("jobs"));
    jc.sandbox.dir = dir.join("sandbox");
    ProviderConfig::parse(provider, Path::new("provider.toml"))
        .unwrap()
        .apply(&mut jc)
        .unwrap();
    jc.sandbox
}

fn unetv_links() -> Vec<String> {
    unet_sandbox::egress::host_links()
        .into_iter()
        .map(|(n, _)| n)
        .filter(|n| n.starts_with("unetv"))
        .collect()
}

const PROBE: &str = "ip route; cat /etc/resolv.conf; echo end";

fn probe(sb: &SandboxConfig, id: &str) -> String {
    let out = exec::run(
        sb,
        id,
        3,
        &["/bin/sh".to_string(), "-c".to_string(), PROBE.to_string()],
        &ExecLimits::default(),
        RunsOn::default(),
        None,
    );
    assert_eq!(out.start_error, None, "{out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_providers_egress_reaches_jobs_and_services() {
    if !inside("jobs::egress_tests::the_providers_egress_reaches_jobs_and_services") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let sb = sandbox(
        dir.path(),
        "[network]\negress = \"on\"\nsubnet = \"192.168.77.0/28\"\ndns = [\"9.9.9.9\"]",
    );
    assert!(sb.egress.is_some());
    // A subnet overlapping one of the host's routes is refused when the file is loaded.
    let sh = |c: &str| {
        assert!(Command::new("sh")
            .args(["-c", c])
            .status()
            .unwrap()
            .success())
    };
    sh(
        "ip link add tlan type veth peer name tlan1 && ip addr add 172.20.5.1/24 dev tlan && \
        ip link set tlan up && ip link set tlan1 up",
    );
    let e = ProviderConfig::parse(
        "[network]\negress = \"on\"\nsubnet = \"172.20.0.0/16\"",
        Path::new("provider.toml"),
    )
    .unwrap_err();
    assert!(
        e.contains("overlaps the host's route(s) 172.20.5.0/24 dev tlan"),
        "{e}"
    );
    sh("ip link del tlan");
    // A batch job: its route and resolvers, and nothing left once it ended.
    let out = probe(&sb, &format!("eg1-{}", std::process::id()));
    assert!(out.contains("default via 192.168.77.1 dev eth0"), "{out}");
    assert!(out.contains("nameserver 9.9.9.9\n"), "{out}");
    assert!(out.ends_with("end\n"), "{out}");
    assert_eq!(unetv_links(), Vec::<String>::new());
    // A service holds its network while it runs, and gives it back when stopped.
    let argv = ["/bin/sleep".to_string(), "60".to_string()];
    let w = exec::Workload {
        container: format!("unet-svc-egress-{}", std::process::id()),
        hostname: "service",
        lease: 3,
        argv: &argv,
        env: &[],
        image: None,
        program: None,
        memory_bytes: 64 << 20,
        file_bytes: 1 << 20,
        gpu: None,
    };
    let p = exec::prepare(&sb, &w).unwrap();
    let host_if = p.egress.as_ref().unwrap().host_if().to_string();
    let log = Arc::new(unet_sandbox::LiveLog::new(4096));
    let mut svc = p
        .runtime
        .start_service(&p.id, &p.bundle, &p.spec, log)
        .unwrap();
    svc.hold_volume(p.volume);
    svc.hold_network(p.egress.unwrap());
    assert_eq!(unetv_links(), vec![host_if]);
    drop(svc);
    assert_eq!(unetv_links(), Vec::<String>::new());
}

#[test]
fn with_egress_off_a_job_has_loopback_only() {
    if !inside("jobs::egress_tests::with_egress_off_a_job_has_loopback_only") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let sb = sandbox(dir.path(), "[network]\negress = \"off\"");
    assert!(sb.egress.is_none());
    let out = probe(&sb, &format!("eg2-{}", std::process::id()));
    assert!(!out.contains("default"), "{out}");
    assert!(!out.contains("nameserver"), "{out}");
    assert!(out.ends_with("end\n"), "{out}");
    assert_eq!(unetv_links(), Vec::<String>::new());
}

/// A service started through the job server with egress on: the miner's forwarded port
/// still reaches it, it has its route out and the provider's resolvers, and its veth goes
/// when the renter stops it. Service ports 25100-25109.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_holds_its_network_until_it_stops() {
    use super::server::tests::{fixture_with, key, CHAIN};
    use super::service_tests::{get_when_up, httpd_service, upload_example};
    use unet_renter::{client::JobClient, service::ServiceState};
    if !inside("jobs::egress_tests::a_service_holds_its_network_until_it_stops") {
        return;
    }
    let fx = fixture_with(1, 8, |c| {
        c.services.ports = (25100, 25109);
        let egress = c
            .sandbox
            .egress_for(unet_sandbox::egress::EgressConfig::default())
            .unwrap();
        c.sandbox.egress = Some(egress);
    })
    .await;
    let c = JobClient::new(&fx.url, key(1), CHAIN, 0);
    let digest = upload_example(&c).await;
    let script = "mkdir -p /tmp/www && cat /proc/net/route > /tmp/www/route.txt && \
                  cat /etc/resolv.conf > /tmp/www/resolv.txt && exec httpd -f -p 8080 -h /tmp/www";
    let req = unet_renter::service::ServiceRequest {
        argv: vec!["/bin/sh".into(), "-c".into(), script.into()],
        ..httpd_service(&digest, "x", 1)
    };
    let v = c.service_start(&req).await.unwrap();
    assert_eq!(v.state, ServiceState::Running);
    // Default route (destination 0) via 10.213.0.1, as /proc/net/route writes it.
    let route = get_when_up(&v.endpoint, "/route.txt").await;
    assert!(route.contains("eth0\t00000000\t0100D50A"), "{route}");
    let resolv = get_when_up(&v.endpoint, "/resolv.txt").await;
    assert!(resolv.contains("nameserver 1.1.1.1\n"), "{resolv}");
    assert_eq!(unetv_links().len(), 1);
    let stopped = c.service_stop().await.unwrap();
    assert_eq!(stopped.state, ServiceState::Stopped);
    assert_eq!(unetv_links(), Vec::<String>::new());
}

/// Egress is for renters' own programs: the ONNX runner, which only reads its inputs and
/// prints, never gets a network, even with egress on; a job on the same sandbox does.
#[test]
fn the_onnx_runner_gets_no_network_even_with_egress_on() {
    if !inside("jobs::egress_tests::the_onnx_runner_gets_no_network_even_with_egress_on") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let sb = sandbox(
        dir.path(),
        "[network]\negress = \"on\"\nsubnet = \"192.168.77.0/28\"\ndns = [\"9.9.9.9\"]",
    );
    let inputs = dir.path().join("in");
    std::fs::create_dir_all(&inputs).unwrap();
    let argv = vec!["/bin/ls".to_string()];
    let workload = |container: &str, program| exec::Workload {
        container: container.into(),
        hostname: "job",
        lease: 3,
        argv: &argv,
        env: &[],
        image: None,
        program,
        memory_bytes: 64 << 20,
        file_bytes: 1 << 20,
        gpu: None,
    };
    let runner = exec::prepare(
        &sb,
        &workload(
            "unet-onnx-net",
            Some(exec::Program {
                binary: Path::new("/bin/ls"),
                inputs: &inputs,
            }),
        ),
    )
    .unwrap();
    assert!(runner.egress.is_none());
    assert!(runner.spec.netns.is_none());
    let job = exec::prepare(&sb, &workload("unet-job-net", None)).unwrap();
    assert!(job.egress.is_some());
    assert!(job.spec.netns.is_some());
}
