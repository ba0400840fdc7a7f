//! Starting and stopping node processes (devnet, bench, tests), and the signals that stop a
//! parent of such processes.

use anyhow::{Context as _, Result};
use std::{
    fs::File,
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};
use tokio::signal::unix::{signal, Signal, SignalKind};
use unet_client::Client;

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
    pub home: PathBuf,
    pub rpc: String,
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
