//! Egress with real `runc` containers: a workload reaches the outside when egress is on, and
//! nothing of the host, private ranges, cloud metadata or another workload; with egress off
//! it reaches nothing at all.
//!
//! Each test re-executes this binary in a private network namespace of its own (`unshare -n`,
//! marked by `UNET_EGRESS_TEST_INNER`), so its nftables table, `ip_forward` and veth pairs
//! never touch the host's. Inside, a "world" namespace joined by a veth plays the Internet
//! (203.0.113.1, TEST-NET-3), the cloud metadata address (169.254.169.254) and a private LAN
//! host (10.99.0.1), each answering a known body. Needs root, runc, busybox-static,
//! iproute2, nftables and util-linux (scripts/ci-deps installs them). Ports: 25000-25099.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;
use unet_sandbox::egress::{Attached, Egress, EgressConfig};
use unet_sandbox::{netns, rootfs, IdRange, LiveLog, Resources, RunOutcome, Runtime, WorkloadSpec};

const INNER: &str = "UNET_EGRESS_TEST_INNER";
const WORLD_PORT: u16 = 25001;
const HOST_PORT: u16 = 25002;
const SECOND_PORT: u16 = 25003;
const PUBLIC: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 1);
const METADATA: Ipv4Addr = Ipv4Addr::new(169, 254, 169, 254);
const LAN: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 1);
const HOST_UPLINK: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);

fn inside(test: &str) -> bool {
    unet_sandbox::netns::rerun_in_private_netns(test, INNER)
}

struct Env {
    _dir: tempfile::TempDir,
    base: PathBuf,
    rt: Runtime,
    rootfs: PathBuf,
    egress: Egress,
}

fn env() -> Env {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::Builder::new()
        .prefix("unet-egress-test")
        .tempdir()
        .unwrap();
    let base = dir.path().to_path_buf();
    std::fs::set_permissions(&base, std::fs::Permissions::from_mode(0o711)).unwrap();
    let rt = Runtime::detect(base.join("runc-state"))
        .unwrap_or_else(|e| panic!("the egress tests need runc: {e}"));
    let rootfs = rootfs::busybox_rootfs(&base.join("busybox-root"))
        .unwrap_or_else(|e| panic!("the egress tests need busybox-static: {e}"));
    let egress = Egress::new(EgressConfig::default(), base.join("egress"), "test").unwrap();
    Env {
        _dir: dir,
        base,
        rt,
        rootfs,
        egress,
    }
}

impl Env {
    fn spec(&self, name: &str, script: &str, net: Option<&Attached>) -> WorkloadSpec {
        let mut s = WorkloadSpec {
            rootfs: self.rootfs.clone(),
            args: vec!["/bin/sh".into(), "-c".into(), script.into()],
            env: vec!["PATH=/bin".into()],
            cwd: "/".into(),
            uid: 0,
            gid: 0,
            hostname: "job".into(),
            resources: Resources::default(),
            ids: IdRange::default(),
            binds: vec![],
            cgroup: format!("/unet-test/e{}-{name}", std::process::id()),
            devices: vec![],
            netns: None,
        };
        if let Some(a) = net {
            a.apply(&mut s).unwrap();
        }
        s
    }

    fn run(&self, name: &str, script: &str, egress: bool) -> RunOutcome {
        let id = format!("e{}-{name}", std::process::id());
        let net = egress.then(|| self.egress.attach(&id).unwrap());
        let spec = self.spec(name, script, net.as_ref());
        self.rt.run(
            &id,
            &self.base.join("bundles").join(&id),
            &spec,
            Duration::from_secs(40),
            1 << 20,
        )
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn sh(cmd: &str) {
    let out = Command::new("sh").args(["-c", cmd]).output().unwrap();
    assert!(out.status.success(), "{cmd}: {}", text(&out.stderr));
}

/// Answers every connection on `addr` with `body` (from whatever namespace the listener was
/// made in).
fn serve(l: TcpListener, body: String) {
    std::thread::spawn(move || {
        for mut s in l.incoming().flatten() {
            let _ = s.write_all(body.as_bytes());
        }
    });
}

/// The world's network namespace, unmounted when dropped.
struct World {
    file: PathBuf,
    ns: std::fs::File,
}

impl Drop for World {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.file).status();
    }
}

/// The world namespace: its veth to this namespace, its addresses and listeners, and the
/// default route of this namespace through it.
fn world(base: &Path) -> World {
    let file = base.join("world.netns");
    std::fs::write(&file, b"").unwrap();
    sh(&format!("unshare --net={} true", file.display()));
    let ns = std::fs::File::open(&file).unwrap();
    let me = std::process::id();
    netns::run_in(&ns, move || {
        sh(&format!(
            "ip link add eth0 type veth peer name tworld netns {me} && ip link set lo up && \
             ip link set eth0 up && ip addr add 198.51.100.2/30 dev eth0 && \
             ip addr add {PUBLIC}/32 dev lo && ip addr add {METADATA}/32 dev lo && \
             ip addr add {LAN}/32 dev lo && ip route add 10.213.0.0/16 via 198.51.100.1"
        ));
        for a in [PUBLIC, METADATA, LAN] {
            let l = TcpListener::bind((a, WORLD_PORT)).unwrap();
            serve(l, format!("WORLD-{a}\n"));
        }
    })
    .unwrap();
    sh(&format!(
        "ip addr add {HOST_UPLINK}/30 dev tworld && ip link set tworld up && \
         ip route add default via 198.51.100.2"
    ));
    World { file, ns }
}

/// Reads what a connection to `addr` answers (within 3 s), or the error.
fn fetch(addr: SocketAddr) -> Result<String, String> {
    let mut s =
        TcpStream::connect_timeout(&addr, Duration::from_secs(3)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).map_err(|e| e.to_string())?;
    Ok(out)
}

fn unetv_links() -> Vec<String> {
    unet_sandbox::egress::host_links()
        .into_iter()
        .map(|(n, _)| n)
        .filter(|n| n.starts_with("unetv"))
        .collect()
}

#[test]
fn egress_on_reaches_the_world_and_off_does_not() {
    if !inside("egress_on_reaches_the_world_and_off_does_not") {
        return;
    }
    let e = env();
    let _world = world(&e.base);
    let probe = format!(
        "nc -w 3 {PUBLIC} {WORLD_PORT} </dev/null; echo; cat /etc/resolv.conf; \
         echo v6=$(cat /proc/net/if_inet6 | wc -l); ip -6 route; ip route; \
         ip route del default 2>/dev/null && echo ROUTE-CHANGED; \
         ip addr add 10.213.9.9/32 dev eth0 2>/dev/null && echo ADDR-CHANGED; \
         echo > /etc/resolv.conf 2>/dev/null && echo RESOLV-WRITTEN; echo end"
    );
    let on = e.run("on", &probe, true);
    let out = text(&on.stdout);
    assert!(out.contains(&format!("WORLD-{PUBLIC}")), "{on:?}");
    assert!(
        out.contains("nameserver 1.1.1.1\nnameserver 9.9.9.9\n"),
        "{on:?}"
    );
    assert!(out.contains("v6=0\n"), "an IPv6 address: {on:?}");
    assert!(out.contains("default via 10.213.0.1 dev eth0"), "{on:?}");
    // No CAP_NET_ADMIN over the namespace, and resolv.conf is read-only.
    for changed in ["ROUTE-CHANGED", "ADDR-CHANGED", "RESOLV-WRITTEN"] {
        assert!(!out.contains(changed), "{changed}: {on:?}");
    }
    assert!(out.ends_with("end\n"), "{on:?}");
    let off = e.run("off", &probe, false);
    assert!(text(&off.stdout).ends_with("end\n"), "{off:?}");
    assert!(!text(&off.stdout).contains("WORLD-"), "{off:?}");
    assert!(!text(&off.stdout).contains("default via"), "{off:?}");
    // Nothing is left of the workload's network.
    assert_eq!(unetv_links(), Vec::<String>::new());
}

#[test]
fn egress_never_reaches_the_host_private_ranges_or_other_workloads() {
    if !inside("egress_never_reaches_the_host_private_ranges_or_other_workloads") {
        return;
    }
    let e = env();
    let world = world(&e.base);
    // A listener on every address of this (the host's) namespace.
    serve(
        TcpListener::bind(("0.0.0.0", HOST_PORT)).unwrap(),
        "HOST\n".into(),
    );
    // Controls: from the host, each target answers.
    for a in [PUBLIC, METADATA, LAN] {
        assert_eq!(
            fetch((a, WORLD_PORT).into()).unwrap(),
            format!("WORLD-{a}\n")
        );
    }
    assert_eq!(fetch((HOST_UPLINK, HOST_PORT).into()).unwrap(), "HOST\n");
    // A second renter's workload, serving on its own address.
    let id2 = format!("e{}-second", std::process::id());
    let net2 = e.egress.attach(&id2).unwrap();
    let addr2 = net2.address();
    let spec2 = e.spec(
        "second",
        &format!("while true; do echo SECOND | nc -l -p {SECOND_PORT}; done"),
        Some(&net2),
    );
    let log = Arc::new(LiveLog::new(1 << 16));
    let svc =
        e.rt.start_service(&id2, &e.base.join("bundles").join(&id2), &spec2, log)
            .unwrap();
    let ns2 = svc.netns().unwrap();
    // Control: it answers on its address (from inside its namespace).
    let mut answered = Err(String::new());
    for _ in 0..50 {
        answered = netns::run_in(&ns2, move || fetch((addr2, SECOND_PORT).into())).unwrap();
        if answered.is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(answered.unwrap(), "SECOND\n");
    let id1 = format!("e{}-first", std::process::id());
    let net1 = e.egress.attach(&id1).unwrap();
    let (addr1, gw1, gw2) = (net1.address(), net1.gateway(), net2.gateway());
    let script = format!(
        "nc -ll -p {SECOND_PORT} -e echo INBOUND & \
         for t in {PUBLIC}:{WORLD_PORT} {METADATA}:{WORLD_PORT} {LAN}:{WORLD_PORT} \
         {gw1}:{HOST_PORT} {gw2}:{HOST_PORT} {HOST_UPLINK}:{HOST_PORT} 127.0.0.1:{HOST_PORT} \
         {addr2}:{SECOND_PORT}; do \
         echo \"$t=$(nc -w 2 ${{t%:*}} ${{t#*:}} </dev/null)\"; done; \
         echo end"
    );
    let spec1 = e.spec("first", &script, Some(&net1));
    // Inbound attempts while the first workload listens: from the world and from the host.
    let ns1 = std::fs::File::open(net1.netns()).unwrap();
    let inbound = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(4));
        // Control: the workload listens (a connection from inside its namespace gets in).
        let from_inside = netns::run_in(&ns1, move || fetch((addr1, SECOND_PORT).into()));
        let from_world = netns::run_in(&world.ns, move || fetch((addr1, SECOND_PORT).into()));
        let from_host = fetch((addr1, SECOND_PORT).into());
        drop(world);
        (from_inside.unwrap(), from_world.unwrap(), from_host)
    });
    let out = e.rt.run(
        &id1,
        &e.base.join("bundles").join(&id1),
        &spec1,
        Duration::from_secs(60),
        1 << 20,
    );
    let (from_inside, from_world, from_host) = inbound.join().unwrap();
    assert_eq!(from_inside, Ok("INBOUND\n".to_string()), "{out:?}");
    let got = text(&out.stdout);
    assert!(got.ends_with("end\n"), "{out:?}");
    // The outside answers, nothing else does.
    assert!(
        got.contains(&format!("{PUBLIC}:{WORLD_PORT}=WORLD-{PUBLIC}")),
        "{out:?}"
    );
    for blocked in [
        format!("{METADATA}:{WORLD_PORT}="),
        format!("{LAN}:{WORLD_PORT}="),
        format!("{gw1}:{HOST_PORT}="),
        format!("{gw2}:{HOST_PORT}="),
        format!("{HOST_UPLINK}:{HOST_PORT}="),
        format!("127.0.0.1:{HOST_PORT}="),
        format!("{addr2}:{SECOND_PORT}="),
    ] {
        assert!(got.contains(&format!("{blocked}\n")), "{blocked}: {got}");
    }
    assert!(
        from_world.is_err(),
        "inbound from the world: {from_world:?}"
    );
    assert!(from_host.is_err(), "inbound from the host: {from_host:?}");
    drop(svc);
    drop((net1, net2));
    assert_eq!(unetv_links(), Vec::<String>::new());
}

#[test]
fn stopping_removes_the_network_and_the_sweep_removes_leftovers() {
    if !inside("stopping_removes_the_network_and_the_sweep_removes_leftovers") {
        return;
    }
    let e = env();
    let a = e.egress.attach("unet-left-1").unwrap();
    // The firewall is in place, and put back when something removed it.
    let table = || {
        Command::new("nft")
            .args(["list", "table", "inet", "unet_egress"])
            .output()
            .unwrap()
            .status
            .success()
    };
    assert!(table());
    assert!(!e.egress.ensure_installed().unwrap());
    sh("nft flush ruleset");
    assert!(!table());
    assert!(e.egress.ensure_installed().unwrap());
    assert!(table());
    sh("nft delete table inet unet_egress");
    // A subnet that overlaps one of the host's routes (its LAN, say) is refused.
    let lan = Egress::new(
        EgressConfig {
            subnet: unet_sandbox::egress::Subnet::parse("192.168.30.0/24").unwrap(),
            ..EgressConfig::default()
        },
        e.base.join("lan"),
        "lan",
    )
    .unwrap();
    sh(
        "ip link add tlan type veth peer name tlan1 && ip addr add 192.168.30.250/25 dev tlan && \
        ip link set tlan up && ip link set tlan1 up",
    );
    let err = lan.install().unwrap_err();
    assert!(err.contains("192.168.30.128/25 dev tlan"), "{err}");
    sh("ip link del tlan");
    let b = e.egress.attach("unet-left-2").unwrap();
    assert!(table(), "a workload starting puts the firewall back");
    assert_ne!(a.address(), b.address());
    assert_eq!(unetv_links().len(), 2);
    let ns_file = a.netns().to_path_buf();
    assert!(ns_file.exists());
    drop(b);
    assert_eq!(unetv_links(), vec![a.host_if().to_string()]);
    // A crash: the first is never torn down.
    let leftover = a.host_if().to_string();
    std::mem::forget(a);
    // Another miner's link (another owner) is not this miner's to remove.
    let other = Egress::new(EgressConfig::default(), e.base.join("other"), "other").unwrap();
    let theirs = other.attach("unet-theirs").unwrap();
    // A third miner with another subnet may not replace the table under them.
    let third = Egress::new(
        EgressConfig {
            subnet: unet_sandbox::egress::Subnet::parse("172.22.0.0/16").unwrap(),
            ..EgressConfig::default()
        },
        e.base.join("third"),
        "third",
    )
    .unwrap();
    let err = third.attach("unet-third").unwrap_err();
    assert!(err.contains("must use the same network.subnet"), "{err}");
    let removed = e.egress.sweep();
    assert!(removed.contains(&leftover), "{removed:?}");
    assert!(!ns_file.exists());
    assert_eq!(unetv_links(), vec![theirs.host_if().to_string()]);
    drop(theirs);
    assert_eq!(unetv_links(), Vec::<String>::new());
    // Alone on the host, a miner may change the subnet.
    let net = third.attach("unet-third").unwrap();
    assert!(
        net.address().to_string().starts_with("172.22.0."),
        "{net:?}"
    );
}
