//! Starting and stopping node processes (devnet, bench, tests).

use anyhow::{Context as _, Result};
use std::{
    fs::File,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};
use unet_client::Client;

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

    /// Whether the process has exited.
    pub fn exited(&mut self) -> bool {
        match &mut self.child {
            Some(c) => !matches!(c.try_wait(), Ok(None)),
            None => true,
        }
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
            if n.exited() {
                anyhow::bail!(
                    "node {} exited; see {}",
                    n.home.display(),
                    n.home.join("node.log").display()
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
