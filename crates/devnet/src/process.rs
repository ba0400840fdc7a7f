//! Node and miner child processes (devnet, bench), the signals that stop their parent, funding
//! new accounts from the faucet, and CPU/memory samples of a process from /proc.

use anyhow::{bail, Context as _, Result};
use commonware_cryptography::Signer;
use std::{
    fs::File,
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};
use tokio::signal::unix::{signal, Signal, SignalKind};
use unet_client::Client;
use unet_miner::MinerHome;
use unet_types::{Address, Payload, PrivateKey, Transaction};

/// The signals that stop a process which owns children: SIGINT (Ctrl-C), SIGTERM (`kill`,
/// systemd, docker) and SIGHUP (its terminal closed). Their default action would end the
/// process without running any destructor, leaving every child running; once this is created
/// they are delivered to [`StopSignals::recv`] instead.
pub struct StopSignals {
    int: Signal,
    term: Signal,
    hup: Signal,
}

impl StopSignals {
    /// Installs the handlers (call before starting any child; needs a tokio runtime).
    pub fn new() -> Result<Self> {
        let install = |kind: SignalKind| signal(kind).context("installing a signal handler");
        Ok(Self {
            int: install(SignalKind::interrupt())?,
            term: install(SignalKind::terminate())?,
            hup: install(SignalKind::hangup())?,
        })
    }

    /// Waits for the next stop signal; returns its name.
    pub async fn recv(&mut self) -> &'static str {
        tokio::select! {
            _ = self.int.recv() => "SIGINT",
            _ = self.term.recv() => "SIGTERM",
            _ = self.hup.recv() => "SIGHUP",
        }
    }
}

/// Fails, naming `what` and the address, if `addr` cannot be listened on now.
pub fn check_free(addr: SocketAddr, what: &str) -> Result<()> {
    std::net::TcpListener::bind(addr)
        .map(drop)
        .with_context(|| format!("{what} cannot listen on {addr} (port taken by another process, or not an address of this machine)"))
}

/// The last `n` non-empty lines of a log file, indented (empty if it cannot be read).
pub fn log_tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..]
        .iter()
        .map(|l| format!("\n    {l}"))
        .collect()
}

/// A `unet node` child process; killed when dropped.
pub struct NodeProcess {
    /// The node's home directory.
    pub home: PathBuf,
    /// Its API URL (`http://` + `rpc_listen`).
    pub rpc: String,
    /// The child (`None` once killed).
    pub child: Option<Child>,
}

impl NodeProcess {
    /// Starts `unet node --home HOME`, logging to HOME/node.log.
    pub fn start(home: &Path) -> Result<Self> {
        let exe = std::env::current_exe().context("locating the unet binary")?;
        let config = unet_node::home::Home::load(home)?;
        let log = File::options()
            .create(true)
            .append(true)
            .open(home.join("node.log"))?;
        let child = Command::new(exe)
            .arg("node")
            .arg("--home")
            .arg(home)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("spawning unet node")?;
        Ok(Self {
            home: home.to_path_buf(),
            rpc: format!("http://{}", config.config.rpc_listen),
            child: Some(child),
        })
    }

    /// A client of the node's API.
    pub fn client(&self) -> Client {
        Client::new(&self.rpc)
    }

    /// Kills the process (SIGKILL) and waits for it.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// How the process ended (`None` while it runs).
    pub fn exit_status(&mut self) -> Option<String> {
        match &mut self.child {
            Some(c) => match c.try_wait() {
                Ok(None) => None,
                Ok(Some(status)) => Some(status.to_string()),
                Err(e) => Some(format!("unknown status ({e})")),
            },
            None => Some("stopped".into()),
        }
    }

    /// What the node wrote last: the reason it stopped, for a message.
    pub fn last_log_lines(&self) -> String {
        log_tail(&self.home.join("node.log"), 5)
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Waits until every node's API answers.
pub async fn wait_ready(nodes: &mut [NodeProcess], timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    for n in nodes.iter_mut() {
        let client = n.client();
        loop {
            if client.status().await.is_ok() {
                break;
            }
            if let Some(status) = n.exit_status() {
                anyhow::bail!(
                    "node {} exited ({status}); the end of {}:{}",
                    n.home.display(),
                    n.home.join("node.log").display(),
                    n.last_log_lines()
                );
            }
            if Instant::now() > deadline {
                anyhow::bail!("node {} did not start in time", n.home.display());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok(())
}

/// A `unet miner run` child process; killed when dropped.
pub struct MinerProcess {
    /// Its name in messages (`miner0`).
    pub name: String,
    /// The miner's owner account.
    pub owner: Address,
    /// Its log file.
    pub log: PathBuf,
    /// Its metrics address, if it serves one.
    pub metrics: Option<String>,
    child: Option<Child>,
}

impl MinerProcess {
    /// Starts `unet miner run --home HOME --rpc RPCS`, logging to HOME/miner.log.
    pub fn start(
        name: &str,
        home: &Path,
        rpcs: &[String],
        metrics_port: Option<u16>,
    ) -> Result<Self> {
        Self::start_with_jobs(name, home, rpcs, metrics_port, None)
    }

    /// [`MinerProcess::start`], also serving the job endpoint on 127.0.0.1:`jobs_port`.
    pub fn start_with_jobs(
        name: &str,
        home: &Path,
        rpcs: &[String],
        metrics_port: Option<u16>,
        jobs_port: Option<u16>,
    ) -> Result<Self> {
        let exe = std::env::current_exe().context("locating the unet binary")?;
        let owner = MinerHome::new(home).owner_key()?.public_key();
        let log = home.join("miner.log");
        let out = File::options().create(true).append(true).open(&log)?;
        let mut cmd = Command::new(exe);
        cmd.args(["miner", "run", "--no-progress", "--home"])
            .arg(home)
            .arg("--rpc")
            .arg(rpcs.join(","));
        let metrics = metrics_port.map(|p| format!("127.0.0.1:{p}"));
        if let Some(m) = &metrics {
            cmd.args(["--metrics", m]);
        }
        if let Some(p) = jobs_port {
            cmd.args(["--jobs", &format!("127.0.0.1:{p}")]);
        }
        let child = cmd
            .env(
                "RUST_LOG",
                std::env::var("UNET_MINER_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdout(Stdio::null())
            .stderr(out)
            .spawn()
            .context("spawning unet miner")?;
        Ok(Self {
            name: name.into(),
            owner,
            log,
            metrics,
            child: Some(child),
        })
    }

    /// The child's pid (`None` once killed).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// Whether the process has ended.
    pub fn exited(&mut self) -> bool {
        match &mut self.child {
            Some(c) => !matches!(c.try_wait(), Ok(None)),
            None => true,
        }
    }

    /// Kills the process (SIGKILL) and waits for it.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for MinerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Sends `amount` from the faucet to each owner and waits until the last transfer is final.
pub async fn fund(
    client: &Client,
    faucet: &PrivateKey,
    owners: &[Address],
    amount: u128,
) -> Result<()> {
    if owners.is_empty() {
        return Ok(());
    }
    let status = client.status().await?;
    let account = client.account(&faucet.public_key()).await?;
    let first = account.pending_nonce;
    let mut last = None;
    for (nonce, to) in (first..).zip(owners) {
        let tx = Transaction {
            chain_id: status.chain_id,
            sender: faucet.public_key(),
            nonce,
            fee: status.params.min_fee,
            payload: Payload::Transfer {
                to: to.clone(),
                amount,
            },
        }
        .sign(faucet);
        last = Some(client.send_transaction(&tx).await?);
    }
    let Some(last) = last else { return Ok(()) };
    let v = client
        .wait_finalized(&last, Duration::from_secs(120))
        .await?;
    if !v.is_finalized() {
        bail!("funding transfer {last} was not finalized: {v:?}");
    }
    Ok(())
}

/// CPU seconds (user + system) and current / peak resident memory of a process.
#[derive(Clone, Copy, Debug, Default)]
pub struct ProcSample {
    /// CPU seconds used (user + system).
    pub cpu_s: f64,
    /// Resident memory now, KiB.
    pub rss_kib: u64,
    /// Peak resident memory, KiB.
    pub hwm_kib: u64,
}

/// Reads /proc/PID/stat and /proc/PID/status (Linux).
pub fn sample(pid: u32) -> Option<ProcSample> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may contain spaces) start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    // SAFETY-free: the clock tick rate is 100 on every Linux we run on; read it to be sure.
    let hz = clock_ticks();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib = |key: &str| {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    Some(ProcSample {
        cpu_s: (utime + stime) / hz,
        rss_kib: kib("VmRSS:"),
        hwm_kib: kib("VmHWM:"),
    })
}

fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}
