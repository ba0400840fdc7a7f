//! The sandbox with real `runc` processes: what a workload gets and the attacks it cannot
//! make. These tests need root, `runc` and `busybox-static` (scripts/ci-deps installs them);
//! without them they fail, naming what is missing.

use std::path::PathBuf;
use std::time::Duration;
use unet_sandbox::{rootfs, Bind, IdRange, Resources, RunOutcome, Runtime, Stopped, WorkloadSpec};

struct Env {
    _dir: tempfile::TempDir,
    base: PathBuf,
    rt: Runtime,
    rootfs: PathBuf,
}

fn env() -> Env {
    let dir = tempfile::Builder::new()
        .prefix("unet-sandbox-test")
        .tempdir()
        .unwrap();
    let base = dir.path().to_path_buf();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&base, std::fs::Permissions::from_mode(0o711)).unwrap();
    let rt = Runtime::detect(base.join("runc-state"))
        .unwrap_or_else(|e| panic!("the sandbox tests need runc: {e}"));
    let rootfs = rootfs::busybox_rootfs(&base.join("busybox-root"))
        .unwrap_or_else(|e| panic!("the sandbox tests need busybox-static: {e}"));
    Env {
        _dir: dir,
        base,
        rt,
        rootfs,
    }
}

fn unique(name: &str) -> String {
    format!("t{}-{name}", std::process::id())
}

impl Env {
    fn spec(&self, name: &str, script: &str, binds: Vec<Bind>, r: Resources) -> WorkloadSpec {
        WorkloadSpec {
            rootfs: self.rootfs.clone(),
            args: vec!["/bin/sh".into(), "-c".into(), script.into()],
            env: vec!["PATH=/bin".into(), "HOME=/work".into()],
            cwd: "/".into(),
            uid: 0,
            gid: 0,
            hostname: "job".into(),
            resources: r,
            ids: IdRange::default(),
            binds,
            cgroup: format!("/unet-test/{}", unique(name)),
            devices: vec![],
            netns: None,
        }
    }

    fn run_with(
        &self,
        name: &str,
        script: &str,
        binds: Vec<Bind>,
        r: Resources,
        wall: u64,
    ) -> RunOutcome {
        let spec = self.spec(name, script, binds, r);
        let id = unique(name);
        self.rt.run(
            &id,
            &self.base.join("bundles").join(&id),
            &spec,
            Duration::from_millis(wall),
            1 << 20,
        )
    }

    fn run(&self, name: &str, script: &str) -> RunOutcome {
        self.run_with(name, script, vec![], Resources::default(), 20_000)
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn a_command_runs_and_its_output_comes_back() {
    let e = env();
    let out = e.run("hello", "echo hello; id -u; echo err >&2; exit 3");
    assert_eq!(out.start_error, None, "{out:?}");
    assert_eq!(text(&out.stdout), "hello\n0\n", "{out:?}");
    assert_eq!(text(&out.stderr), "err\n");
    assert_eq!(out.exit_code, Some(3));
}

#[test]
fn the_hosts_files_are_out_of_reach() {
    let e = env();
    let secret = e.base.join("owner.key");
    std::fs::write(&secret, "TOPSECRET-OWNER-KEY").unwrap();
    let abs = secret.display().to_string();
    let script = format!(
        "cat {abs}; cat ../../../owner.key; cd /tmp && cat ../../../../owner.key; \
         for p in /proc/*/root{abs} /proc/*/cwd/owner.key /proc/1/root/../../owner.key; do cat $p; done; \
         cat /proc/1/environ; ls /proc; echo done"
    );
    let out = e.run("files", &script);
    assert!(text(&out.stdout).ends_with("done\n"), "{out:?}");
    assert!(!text(&out.stdout).contains("TOPSECRET"), "{out:?}");
    // Only the container's own processes are visible.
    let pids: Vec<u32> = text(&out.stdout)
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    assert!(pids.iter().all(|p| *p < 20), "host pids visible: {pids:?}");
    // The root is read-only.
    let out = e.run("rofs", "echo x > /bin/evil || echo refused");
    assert_eq!(text(&out.stdout), "refused\n", "{out:?}");
}

#[test]
fn loopback_services_of_the_host_are_unreachable() {
    let e = env();
    let listener = std::net::TcpListener::bind("127.0.0.1:27101").unwrap();
    listener.set_nonblocking(true).unwrap();
    let out = e.run(
        "net",
        "nc -w 1 127.0.0.1 27101 </dev/null && echo CONNECTED; \
         wget -T 1 -q -O - http://127.0.0.1:27101/ && echo CONNECTED; \
         ip -o link 2>/dev/null | grep -v ' lo' | grep -c . ; echo end",
    );
    assert!(!text(&out.stdout).contains("CONNECTED"), "{out:?}");
    assert!(
        text(&out.stdout).ends_with("0\nend\n"),
        "only loopback: {out:?}"
    );
    assert!(
        listener.accept().is_err(),
        "the host listener got a connection"
    );
}

#[test]
fn host_processes_cannot_be_signalled() {
    let e = env();
    let mut victim = std::process::Command::new("sleep")
        .arg("60")
        .spawn()
        .unwrap();
    let pid = victim.id();
    let out = e.run(
        "kill",
        &format!("kill -9 {pid} || echo refused; kill -9 -1; echo after"),
    );
    assert!(text(&out.stdout).contains("refused"), "{out:?}");
    assert!(
        victim.try_wait().unwrap().is_none(),
        "the host process was killed"
    );
    victim.kill().unwrap();
    let _ = victim.wait();
}

#[test]
fn fork_bomb_hits_the_pids_limit() {
    let e = env();
    let r = Resources {
        pids: 24,
        ..Default::default()
    };
    let out = e.run_with(
        "forkbomb",
        "(i=0; while [ $i -lt 200 ]; do sleep 30 & i=$((i+1)); done) 2>/dev/null; \
         set -- /proc/[0-9]*; echo $#",
        vec![],
        r,
        10_000,
    );
    let n: u64 = text(&out.stdout).trim().parse().unwrap_or(999);
    assert!(n <= 24, "{n} processes: {out:?}");
    // And all of them are gone with the container.
    assert!(out.wall_ms < 9_000, "{out:?}");
}

#[test]
fn memory_bomb_is_stopped_by_the_memory_limit() {
    let e = env();
    let r = Resources {
        memory_bytes: 32 << 20,
        ..Default::default()
    };
    let out = e.run_with(
        "membomb",
        "x=$(head -c 300000000 /dev/zero | tr '\\0' a); echo ${#x}",
        vec![],
        r,
        20_000,
    );
    assert_eq!(out.stopped, Some(Stopped::Memory), "{out:?}");
}

#[test]
fn disk_filling_stops_at_the_tmpfs_size() {
    let e = env();
    let r = Resources {
        tmpfs_bytes: 4 << 20,
        ..Default::default()
    };
    let out = e.run_with(
        "disk",
        "head -c 50000000 /dev/zero > /tmp/big; ls -l /tmp/big | awk '{print $5}'",
        vec![],
        r,
        20_000,
    );
    let size: u64 = text(&out.stdout).trim().parse().unwrap_or(u64::MAX);
    assert!(size <= 4 << 20, "{size}: {out:?}");
}

#[test]
fn nothing_outlives_the_job() {
    let e = env();
    let out = e.run_with(
        "setsid",
        "setsid sh -c 'sleep 987654' & (sh -c 'sleep 987653 &' &) ; nohup sleep 987652 & echo started",
        vec![],
        Resources::default(),
        20_000,
    );
    assert_eq!(text(&out.stdout), "started\n", "{out:?}");
    std::thread::sleep(Duration::from_millis(300));
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let cmd = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let cmd = text(&cmd);
        assert!(
            !cmd.contains("98765"),
            "survivor: {cmd:?} (pid {:?})",
            entry.file_name()
        );
    }
    // The wall-time path too.
    let out = e.run_with(
        "setsid2",
        "setsid sleep 987651 & sleep 100",
        vec![],
        Resources::default(),
        500,
    );
    assert_eq!(out.stopped, Some(Stopped::WallTime), "{out:?}");
    std::thread::sleep(Duration::from_millis(300));
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let cmd = text(&std::fs::read(entry.path().join("cmdline")).unwrap_or_default());
        assert!(!cmd.contains("987651"), "survivor: {cmd:?}");
    }
}

#[test]
fn devices_and_namespaces_are_refused() {
    let e = env();
    let out = e.run(
        "dev",
        "mknod /tmp/mem c 1 1 && echo MKNOD; head -c 1 /dev/mem && echo MEM; \
         unshare -U -r true && echo USERNS; mount -t tmpfs x /tmp && echo MOUNT; \
         ls /dev; echo end",
    );
    let s = text(&out.stdout);
    for bad in ["MKNOD", "MEM", "USERNS", "MOUNT"] {
        assert!(!s.contains(bad), "{bad}: {out:?}");
    }
    assert!(s.ends_with("end\n"), "{out:?}");
    assert!(!s.contains("sda") && !s.contains("nvme"), "{out:?}");
}

#[test]
fn a_lease_cannot_read_another_leases_volume() {
    let e = env();
    let ids_a = IdRange {
        host_base: 3_000_000_000,
        size: 65536,
    };
    let ids_b = IdRange {
        host_base: 3_000_065_536,
        size: 65536,
    };
    let (va, vb) = (e.base.join("vol-a"), e.base.join("vol-b"));
    unet_sandbox::runner::prepare_volume(&va, ids_a).unwrap();
    unet_sandbox::runner::prepare_volume(&vb, ids_b).unwrap();
    let bind = |v: &PathBuf| {
        vec![Bind {
            host: v.clone(),
            container: "/data".into(),
            read_only: false,
        }]
    };
    let mut sa = e.spec(
        "vola",
        "echo RENTER-A-SECRET > /data/s; cat /data/s",
        bind(&va),
        Resources::default(),
    );
    sa.ids = ids_a;
    let out = e.rt.run(
        &unique("vola"),
        &e.base.join("bundles/a"),
        &sa,
        Duration::from_secs(20),
        1 << 20,
    );
    assert_eq!(text(&out.stdout), "RENTER-A-SECRET\n", "{out:?}");
    let vb_script = format!(
        "cat {}/s; cat /proc/*/root{}/s; ls -A /data /tmp /work; echo end",
        va.display(),
        va.display()
    );
    let mut sb = e.spec("volb", &vb_script, bind(&vb), Resources::default());
    sb.ids = ids_b;
    let out = e.rt.run(
        &unique("volb"),
        &e.base.join("bundles/b"),
        &sb,
        Duration::from_secs(20),
        1 << 20,
    );
    assert!(
        !text(&out.stdout).contains("RENTER") && text(&out.stdout).ends_with("end\n"),
        "{out:?}"
    );
    // Even mounted by mistake, another range's volume is unreadable (mode 0700, other owner).
    let mut sc = e.spec(
        "volc",
        "cat /data/s || echo refused",
        bind(&va),
        Resources::default(),
    );
    sc.ids = ids_b;
    let out = e.rt.run(
        &unique("volc"),
        &e.base.join("bundles/c"),
        &sc,
        Duration::from_secs(20),
        1 << 20,
    );
    assert!(!text(&out.stdout).contains("RENTER-A"), "{out:?}");
}

#[test]
fn disk_filling_stops_at_the_volume_quota_and_the_volume_survives_a_remount() {
    let e = env();
    let ids = IdRange::default();
    let (image, vol) = (e.base.join("volumes/q.img"), e.base.join("volumes/q"));
    let quota = 16u64 << 20;
    unet_sandbox::volume::mount(&image, &vol, quota, ids).unwrap();
    // Eight files of 8 MiB each: every one is under RLIMIT_FSIZE, together four times the
    // quota. Without the quota they would all land on the miner's disk.
    let bind = vec![Bind {
        host: vol.clone(),
        container: "/data".into(),
        read_only: false,
    }];
    let out = e.run_with(
        "quota",
        "echo keep > /data/keep; for i in 1 2 3 4 5 6 7 8; do head -c 8388608 /dev/zero > /data/f$i 2>/dev/null; done; \
         du -sk /data | awk '{print $1}'",
        bind.clone(),
        Resources::default(),
        60_000,
    );
    let kib: u64 = text(&out.stdout)
        .lines()
        .last()
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or(u64::MAX);
    assert!(
        kib <= quota / 1024,
        "{kib} KiB written into a 16 MiB volume: {out:?}"
    );
    assert!(
        kib >= 8 << 10,
        "the volume took less than one file: {kib} KiB {out:?}"
    );
    let on_disk = unet_sandbox::volume::allocated_bytes(&image).unwrap();
    assert!(
        on_disk <= quota,
        "the image occupies {on_disk} bytes on the host"
    );
    // A restarted miner mounts the same image again: the data is still there.
    unet_sandbox::volume::unmount(&vol).unwrap();
    assert!(
        !vol.join("keep").exists(),
        "unmounted, yet the data is visible"
    );
    unet_sandbox::volume::mount(&image, &vol, quota, ids).unwrap();
    let out = e.run_with(
        "quota2",
        "cat /data/keep",
        bind,
        Resources::default(),
        20_000,
    );
    let kept = text(&out.stdout);
    unet_sandbox::volume::remove(&image, &vol).unwrap();
    assert_eq!(kept, "keep\n", "{out:?}");
    assert!(!image.exists() && !vol.exists());
}

/// Figures for docs/jobs.md: `cargo test -p unet-sandbox --test runc -- --nocapture
/// start_latency`. Asserts only that the sandbox ran the same command with the same output.
#[test]
fn start_latency_against_running_directly() {
    let e = env();
    let script = "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; echo $i";
    let n = 5u32;
    let t = std::time::Instant::now();
    let mut direct_out = Vec::new();
    for _ in 0..n {
        direct_out = std::process::Command::new(e.rootfs.join("bin/busybox"))
            .args(["sh", "-c", script])
            .output()
            .unwrap()
            .stdout;
    }
    let direct = t.elapsed() / n;
    let t = std::time::Instant::now();
    for _ in 0..n {
        let out = e.run("latency", "true");
        assert_eq!(out.exit_code, Some(0), "{out:?}");
    }
    let start = t.elapsed() / n;
    let t = std::time::Instant::now();
    for _ in 0..n {
        let out = e.run("batch", script);
        assert_eq!(out.stdout, direct_out, "{out:?}");
    }
    let batch = t.elapsed() / n;
    println!(
        "sandbox figures (mean of {n}): container start+teardown of `true` {:?}; \
         batch job {:?} in the sandbox vs {:?} directly: {:.1}x, overhead {:?}",
        start,
        batch,
        direct,
        batch.as_secs_f64() / direct.as_secs_f64(),
        batch.saturating_sub(direct)
    );
}

/// `unet miner doctor`'s checks on this host (which has what the sandbox tests need): every
/// required check passes, including a real sandboxed run; GPU checks are optional.
#[test]
fn doctor_finds_this_host_ready() {
    use unet_sandbox::doctor::{check_host, host_ready, HostPaths};
    let dir = tempfile::tempdir().unwrap();
    let checks = check_host(&HostPaths::default(), &dir.path().join("doctor"));
    let names: Vec<&str> = checks.iter().map(|c| c.name).collect();
    assert_eq!(
        names,
        [
            "root",
            "runc",
            "user_namespaces",
            "cgroups",
            "container",
            "busybox",
            "nvidia_devices",
            "cdi_spec",
            "egress"
        ]
    );
    // nft and ip are installed (scripts/ci-deps); egress is optional unless configured on.
    let egress = checks.iter().find(|c| c.name == "egress").unwrap();
    assert!(egress.ok && !egress.required, "{egress:?}");
    for c in checks.iter().filter(|c| c.required) {
        assert!(c.ok, "{c:?}");
    }
    assert!(host_ready(&checks));
    let run = checks.iter().find(|c| c.name == "container").unwrap();
    assert!(run.detail.contains("ran `echo`"), "{run:?}");
}
