//! Process hygiene of `unet devnet` and `unet node`, on real processes:
//!
//! 1. a devnet stopped with SIGTERM (what `kill`, systemd and docker send) stops every child
//!    (its nodes and miners), as Ctrl-C does;
//! 2. a devnet whose child dies says which one and exits non-zero, stopping the others;
//! 3. a devnet whose ports are taken exits non-zero naming the address, never says it is up,
//!    and leaves no process behind;
//! 4. a node that cannot bind its P2P or API address exits non-zero naming it (no panic).
//!
//! Ports 20000-20999 (below the kernel's ephemeral range); each test has its own hundred.

mod support;

use std::{
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
};
use support::{poll, wait_for};

/// A `unet devnet` (or `unet node`) started by a test, with stdout and stderr in files. On drop
/// it and every process whose command line names its directory are SIGKILLed, so a failing
/// test leaves nothing running.
struct Started {
    dir: tempfile::TempDir,
    child: Child,
}

impl Started {
    fn spawn(args: &[&str], dir: tempfile::TempDir) -> Started {
        let out = std::fs::File::create(dir.path().join("stdout")).unwrap();
        let err = std::fs::File::create(dir.path().join("stderr")).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_unet"))
            .args(args)
            .env_remove("RUST_BACKTRACE")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("spawn unet");
        Started { dir, child }
    }

    /// `unet devnet` with one validator and `miners` miners, on ports `base`..`base + 99`.
    fn devnet(base: u16, miners: usize) -> Started {
        let dir = tempfile::tempdir().unwrap();
        let net = dir.path().join("devnet");
        let ports = |offset: u16| (base + offset).to_string();
        Started::spawn(
            &[
                "devnet",
                "--dir",
                net.to_str().unwrap(),
                "--validators",
                "1",
                "--miners",
                &miners.to_string(),
                "--chips-per-miner",
                "1",
                "--base-p2p-port",
                &ports(0),
                "--base-rpc-port",
                &ports(10),
                "--base-metrics-port",
                &ports(20),
                "--base-jobs-port",
                &ports(30),
            ],
            dir,
        )
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn stdout(&self) -> String {
        std::fs::read_to_string(self.path().join("stdout")).unwrap_or_default()
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(self.path().join("stderr")).unwrap_or_default()
    }

    /// Waits until stdout contains `line` (failing early if the process exits).
    async fn wait_stdout(&mut self, line: &str) {
        let what = format!("{line:?} on the devnet's stdout");
        poll(&what, || {
            let out = self.stdout();
            let exited = self.child.try_wait().unwrap();
            if let Some(status) = exited {
                panic!(
                    "exited ({status}) before {what}; stdout:\n{out}\nstderr:\n{}",
                    self.stderr()
                );
            }
            async move { out.contains(line).then_some(()) }
        })
        .await
    }

    /// Waits for the process to exit; returns its exit code (-1 for a signal).
    async fn exit_code(&mut self) -> i32 {
        let child = &mut self.child;
        poll("the process to exit", || {
            let status = child.try_wait().unwrap();
            async move { status.map(|s| s.code().unwrap_or(-1)) }
        })
        .await
    }
}

impl Drop for Started {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        for pid in processes_naming(self.dir.path()) {
            signal(pid, "KILL");
        }
    }
}

/// Sends `kill -SIG pid`.
fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()
        .expect("run kill");
    assert!(ok.success(), "kill -{sig} {pid} failed");
}

/// Running processes (not zombies) whose parent is `parent`, from /proc.
fn children_of(parent: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // "pid (comm) state ppid ...": comm may hold spaces and parentheses.
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if fields.len() > 1 && fields[0] != "Z" && fields[1] == parent.to_string() {
            out.push(pid);
        }
    }
    out
}

/// Whether `pid` is still a live process (a zombie counts as gone).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rfind(')').map(|i| s[i + 1..].trim_start().to_string()))
        .is_some_and(|rest| !rest.starts_with('Z'))
}

/// Live processes whose command line mentions `dir` (the homes of a devnet live under it).
fn processes_naming(dir: &Path) -> Vec<u32> {
    let needle = dir.to_string_lossy().into_owned();
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        if pid != std::process::id()
            && alive(pid)
            && String::from_utf8_lossy(&cmdline).contains(&needle)
        {
            out.push(pid);
        }
    }
    out
}

/// Waits until none of `pids` is alive and no process names `dir`.
async fn wait_all_gone(pids: &[u32], dir: &Path) {
    wait_for("every child of the devnet to be gone", || {
        let gone = pids.iter().all(|&p| !alive(p)) && processes_naming(dir).is_empty();
        async move { gone }
    })
    .await;
}

/// Printed once the devnet's nodes and miners are all started.
const UP: &str = "stops the network (state is kept in";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devnet_stopped_with_sigterm_stops_every_child() {
    let mut devnet = Started::devnet(20000, 1);
    devnet.wait_stdout(UP).await;
    let kids = children_of(devnet.child.id());
    assert_eq!(kids.len(), 2, "one node and one miner: {kids:?}");

    signal(devnet.child.id(), "TERM");
    let code = devnet.exit_code().await;
    assert_eq!(code, 0, "stderr:\n{}", devnet.stderr());
    assert!(devnet.stdout().contains("SIGTERM: stopping"));
    // The devnet waits for its children as it stops them: they are gone when it has exited.
    for pid in &kids {
        assert!(!alive(*pid), "child {pid} still running after SIGTERM");
    }
    assert_eq!(processes_naming(devnet.path()), Vec::<u32>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devnet_whose_node_dies_says_so_and_stops_the_rest() {
    let mut devnet = Started::devnet(20100, 1);
    devnet.wait_stdout(UP).await;
    let kids = children_of(devnet.child.id());
    assert_eq!(kids.len(), 2, "one node and one miner: {kids:?}");
    let node = kids
        .iter()
        .copied()
        .find(|&p| {
            let cmd = std::fs::read(format!("/proc/{p}/cmdline")).unwrap_or_default();
            String::from_utf8_lossy(&cmd).contains("node\0--home")
        })
        .expect("the node among the children");

    signal(node, "KILL");
    let code = devnet.exit_code().await;
    let stderr = devnet.stderr();
    assert_ne!(code, 0, "the devnet exited 0 after its node died");
    assert!(stderr.contains("node0 exited"), "{stderr}");
    wait_all_gone(&kids, devnet.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devnet_on_a_taken_port_fails_naming_it() {
    // The API port of node0, held as another devnet's node would hold it.
    let taken = TcpListener::bind("127.0.0.1:20210").unwrap();
    let mut devnet = Started::devnet(20200, 1);
    let code = devnet.exit_code().await;
    let (stdout, stderr) = (devnet.stdout(), devnet.stderr());
    assert_ne!(code, 0, "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stderr.contains("127.0.0.1:20210"), "{stderr}");
    assert!(stderr.contains("node0 (API)"), "{stderr}");
    assert!(!stdout.contains("devnet is up"), "{stdout}");
    wait_all_gone(&[], devnet.path()).await;
    drop(taken);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_that_cannot_bind_exits_naming_the_address() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("net");
    let ok = Command::new(env!("CARGO_BIN_EXE_unet"))
        .args([
            "testnet",
            "--trust-devnet-ca",
            "--validators",
            "1",
            "--base-p2p-port",
            "20300",
            "--base-rpc-port",
            "20310",
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let home: PathBuf = out.join("node0");
    for (port, what) in [(20300, "P2P"), (20310, "API")] {
        let taken = TcpListener::bind(("127.0.0.1", port)).unwrap();
        let run_dir = tempfile::tempdir().unwrap();
        let mut node = Started::spawn(&["node", "--home", home.to_str().unwrap()], run_dir);
        let code = node.exit_code().await;
        let stderr = node.stderr();
        assert_ne!(code, 0, "{what}: {stderr}");
        assert!(!stderr.contains("panicked"), "{what}: {stderr}");
        assert!(
            stderr.contains(&format!(
                "cannot listen on the {what} address 127.0.0.1:{port}"
            )),
            "{what}: {stderr}"
        );
        drop(taken);
    }
    // With both addresses free the same home starts (the failures above were the ports).
    let mut node = Started::spawn(
        &["node", "--home", home.to_str().unwrap()],
        tempfile::tempdir().unwrap(),
    );
    let client = unet_client::Client::new("http://127.0.0.1:20310");
    wait_for("the node to answer", || {
        assert!(
            node.child.try_wait().unwrap().is_none(),
            "{}",
            node.stderr()
        );
        let client = client.clone();
        async move { client.status().await.is_ok() }
    })
    .await;
}
