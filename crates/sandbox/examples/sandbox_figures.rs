//! The sandbox's figures, each against a reference measured in the same run (docs/jobs.md):
//!
//! - container start + teardown of `true`, against running `true` directly;
//! - a small batch job (a 20,000-step shell loop) in the sandbox against the same command
//!   run directly (ratio and fixed overhead);
//! - a service: from `runc run` to the first connection forwarded into its network
//!   namespace (busybox `httpd`), and one forwarded connect (`setns` thread + connect)
//!   against a plain loopback connect;
//! - with `--egress`: start + teardown of `true` with egress on (namespace, veth, addresses,
//!   resolv.conf made before and removed after), against the same without. It installs the
//!   egress firewall and `ip_forward` in the current network namespace: run it in a private
//!   one, `unshare -n sh -c 'ip link set lo up && exec sandbox_figures 10 --egress'`.
//!
//! `cargo build --workspace --examples --locked`, then as root:
//! `$CARGO_TARGET_DIR/debug/examples/sandbox_figures [ROUNDS] [--egress]` (default 10). Needs
//! runc and busybox-static, as the sandbox tests do (and nftables, iproute2 for `--egress`).

use std::{
    net::TcpStream,
    path::Path,
    sync::Arc,
    time::{Duration, Instant},
};
use unet_sandbox::{rootfs, IdRange, LiveLog, Resources, Runtime, WorkloadSpec};

fn spec(root: &Path, cgroup: &str, args: &[&str]) -> WorkloadSpec {
    WorkloadSpec {
        rootfs: root.to_path_buf(),
        args: args.iter().map(|s| s.to_string()).collect(),
        env: vec!["PATH=/bin".into()],
        cwd: "/".into(),
        uid: 0,
        gid: 0,
        hostname: "bench".into(),
        resources: Resources::default(),
        ids: IdRange::default(),
        binds: vec![],
        cgroup: format!("/unet-bench/{cgroup}"),
        devices: vec![],
        netns: None,
    }
}

fn mean(total: Duration, n: u32) -> Duration {
    total / n.max(1)
}

fn main() -> Result<(), String> {
    let egress_figure = std::env::args().any(|a| a == "--egress");
    let n: u32 = std::env::args()
        .skip(1)
        .find(|a| a != "--egress")
        .map(|a| {
            a.parse()
                .map_err(|_| format!("ROUNDS {a:?} is not a number"))
        })
        .transpose()?
        .unwrap_or(10);
    let dir = tempfile::Builder::new()
        .prefix("unet-sandbox-figures")
        .tempdir()
        .map_err(|e| e.to_string())?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o711))
            .map_err(|e| e.to_string())?;
    }
    let rt = Runtime::detect(dir.path().join("runc"))?;
    let root = rootfs::busybox_rootfs(&dir.path().join("root"))?;
    let busybox = root.join("bin/busybox");
    let pid = std::process::id();
    let script = "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; echo $i";

    // References, run directly.
    let (mut t_true, mut t_loop) = (Duration::ZERO, Duration::ZERO);
    let mut direct_out = Vec::new();
    for _ in 0..n {
        let t = Instant::now();
        let ok = std::process::Command::new(&busybox)
            .arg("true")
            .status()
            .map_err(|e| e.to_string())?;
        t_true += t.elapsed();
        assert!(ok.success());
        let t = Instant::now();
        direct_out = std::process::Command::new(&busybox)
            .args(["sh", "-c", script])
            .output()
            .map_err(|e| e.to_string())?
            .stdout;
        t_loop += t.elapsed();
    }

    // The same in the sandbox.
    let (mut s_true, mut s_loop) = (Duration::ZERO, Duration::ZERO);
    for i in 0..n {
        let id = format!("b{pid}-true-{i}");
        let t = Instant::now();
        let out = rt.run(
            &id,
            &dir.path().join("bundles").join(&id),
            &spec(&root, &id, &["/bin/true"]),
            Duration::from_secs(30),
            1 << 20,
        );
        s_true += t.elapsed();
        if out.exit_code != Some(0) {
            return Err(format!("`true` in the sandbox: {out:?}"));
        }
        let id = format!("b{pid}-loop-{i}");
        let t = Instant::now();
        let out = rt.run(
            &id,
            &dir.path().join("bundles").join(&id),
            &spec(&root, &id, &["/bin/sh", "-c", script]),
            Duration::from_secs(30),
            1 << 20,
        );
        s_loop += t.elapsed();
        if out.stdout != direct_out {
            return Err(format!("the loop in the sandbox: {out:?}"));
        }
    }

    // Services: start to first forwarded connection; forwarded vs plain connect.
    let (mut s_up, mut s_fwd, mut plain) = (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    let local = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    let local_addr = local.local_addr().map_err(|e| e.to_string())?;
    for i in 0..n {
        let id = format!("b{pid}-svc-{i}");
        let t = Instant::now();
        let mut svc = rt.start_service(
            &id,
            &dir.path().join("bundles").join(&id),
            &spec(&root, &id, &["/bin/httpd", "-f", "-p", "8080", "-h", "/"]),
            Arc::new(LiveLog::new(1 << 16)),
        )?;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match unet_sandbox::netns::connect_in_netns(svc.pid(), 8080, Duration::from_secs(1)) {
                Ok(_) => break,
                Err(e) if Instant::now() > deadline => return Err(e),
                Err(_) => std::thread::sleep(Duration::from_millis(1)),
            }
        }
        s_up += t.elapsed();
        let t = Instant::now();
        unet_sandbox::netns::connect_in_netns(svc.pid(), 8080, Duration::from_secs(1))?;
        s_fwd += t.elapsed();
        let t = Instant::now();
        TcpStream::connect(local_addr).map_err(|e| e.to_string())?;
        plain += t.elapsed();
        let _ = local.accept();
        svc.stop();
    }

    // Egress: the same `true`, with its network made before and removed after.
    let mut e_true = Duration::ZERO;
    if egress_figure {
        let egress = unet_sandbox::egress::Egress::new(
            unet_sandbox::egress::EgressConfig::default(),
            dir.path().join("egress"),
            "figures",
        )?;
        egress.install()?;
        for i in 0..n {
            let id = format!("b{pid}-egress-{i}");
            let t = Instant::now();
            let net = egress.attach(&id)?;
            let mut sp = spec(&root, &id, &["/bin/true"]);
            net.apply(&mut sp)?;
            let out = rt.run(
                &id,
                &dir.path().join("bundles").join(&id),
                &sp,
                Duration::from_secs(30),
                1 << 20,
            );
            drop(net);
            e_true += t.elapsed();
            if out.exit_code != Some(0) {
                return Err(format!("`true` with egress: {out:?}"));
            }
        }
    }

    let (t_true, t_loop, s_true, s_loop) = (
        mean(t_true, n),
        mean(t_loop, n),
        mean(s_true, n),
        mean(s_loop, n),
    );
    let (s_up, s_fwd, plain) = (mean(s_up, n), mean(s_fwd, n), mean(plain, n));
    let x = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64().max(1e-9);
    println!("sandbox figures, mean of {n} rounds (reference measured in the same run):");
    println!(
        "  container start + teardown of `true`: {s_true:.1?} vs {t_true:.1?} directly ({:.0}x)",
        x(s_true, t_true)
    );
    println!(
        "  batch job (20,000-step shell loop):  {s_loop:.1?} vs {t_loop:.1?} directly ({:.2}x, \
         overhead {:.1?})",
        x(s_loop, t_loop),
        s_loop.saturating_sub(t_loop)
    );
    println!("  service start to first forwarded connection: {s_up:.1?}");
    println!(
        "  one forwarded connect (setns thread): {s_fwd:.1?} vs {plain:.1?} plain loopback \
         ({:.0}x)",
        x(s_fwd, plain)
    );
    if egress_figure {
        let e_true = mean(e_true, n);
        println!(
            "  `true` with egress on (netns, veth, teardown): {e_true:.1?} vs {s_true:.1?} \
             without ({:.2}x, overhead {:.1?})",
            x(e_true, s_true),
            e_true.saturating_sub(s_true)
        );
    }
    Ok(())
}
