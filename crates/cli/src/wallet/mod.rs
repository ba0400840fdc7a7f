//! The wallet and chain-query commands: `unet keys`, `balance`, `transfer`, `tx`, `block`,
//! `status`, `supply`, `proof`.
//!
//! Every command takes `--rpc URL` (env `UNET_RPC`, default the devnet's first node),
//! `--keystore DIR` (env `UNET_KEYSTORE`, default `$HOME/.unet/keys`) and `--json` (print one
//! machine-readable JSON value on stdout; on failure `{"error": {...}}` and exit status 1).
//! Secrets are never printed.

mod chain;
mod keys;
pub mod submit;
mod transfer;

use anyhow::{anyhow, Result};
use clap::{Args, Subcommand};
use serde_json::{json, Value};
use std::path::PathBuf;
use unet_client::{Client, ClientError, DEFAULT_RPC};
use unet_keystore as keystore;
use unet_types::{amount::format_unc, hexser, Address};

/// Options every wallet command takes.
#[derive(Args, Clone, Debug)]
pub struct Common {
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    /// URL of the node's API.
    #[arg(long, global = true, env = "UNET_RPC", default_value = DEFAULT_RPC)]
    pub rpc: String,
    /// Keystore directory [default: $HOME/.unet/keys].
    #[arg(long, global = true, env = "UNET_KEYSTORE")]
    pub keystore: Option<PathBuf>,
}

/// Where a passphrase comes from (encrypting a new key or unlocking one).
#[derive(Args, Clone, Debug, Default)]
pub struct Passphrase {
    /// Read the passphrase from this file (one trailing newline is ignored).
    #[arg(long, value_name = "FILE", conflicts_with = "passphrase_env")]
    pub passphrase_file: Option<PathBuf>,
    /// Read the passphrase from this environment variable.
    #[arg(long, value_name = "VAR")]
    pub passphrase_env: Option<String>,
}

impl Passphrase {
    pub fn read(&self) -> Result<Option<zeroize::Zeroizing<Vec<u8>>>> {
        keystore::read_passphrase(
            self.passphrase_file.as_deref(),
            self.passphrase_env.as_deref(),
        )
    }
}

#[derive(Subcommand)]
pub enum Command {
    /// Create, import and list wallet keys.
    Keys {
        #[command(subcommand)]
        command: keys::KeysCommand,
        #[command(flatten)]
        common: Common,
    },
    /// Balance and nonce of an account (finalized state).
    Balance {
        /// An address (64 hex digits) or the name of a key in the keystore.
        account: String,
        #[command(flatten)]
        common: Common,
    },
    /// Send UNC from a key in the keystore; waits for finality unless --no-wait.
    Transfer(transfer::TransferArgs),
    /// A transaction by hash: finalized (with receipt), pending or rejected.
    Tx {
        /// Transaction hash (64 hex digits).
        hash: String,
        #[command(flatten)]
        common: Common,
    },
    /// A finalized block by height, hash, or `latest`.
    Block {
        /// Height, block hash (64 hex digits) or `latest`.
        block: String,
        #[command(flatten)]
        common: Common,
    },
    /// The node's view of the chain: heights, state root, peers, parameters.
    Status {
        #[command(flatten)]
        common: Common,
    },
    /// UNC supply counters.
    Supply {
        #[command(flatten)]
        common: Common,
    },
    /// Fetch an account's state proof and verify it locally against the finalized state root.
    Proof {
        /// An address or the name of a key in the keystore.
        account: String,
        #[command(flatten)]
        common: Common,
    },
}

/// Runs a wallet command. Failures print `error: ...` on stderr (and in `--json` mode an
/// `{"error": ..}` object on stdout) and exit with status 1.
pub fn run(command: Command) -> Result<()> {
    let json_mode = match &command {
        Command::Keys { common, .. }
        | Command::Balance { common, .. }
        | Command::Tx { common, .. }
        | Command::Block { common, .. }
        | Command::Status { common }
        | Command::Supply { common }
        | Command::Proof { common, .. } => common.json,
        Command::Transfer(t) => t.common.json,
    };
    run_command(json_mode, dispatch(command))
}

/// Runs a command's future on a small runtime. Failures print `error: ...` on stderr (and in
/// `--json` mode an `{"error": ..}` object on stdout) and exit with status 1.
pub fn run_command(
    json_mode: bool,
    command: impl std::future::Future<Output = Result<()>>,
) -> Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let result = rt.block_on(command);
    drop(rt);
    let Err(e) = result else { return Ok(()) };
    if json_mode && e.downcast_ref::<Reported>().is_none() {
        let mut err = json!({"message": format!("{e:#}")});
        if let Some(ClientError::Rpc { code, data, .. }) = e.downcast_ref::<ClientError>() {
            err["code"] = json!(code);
            if let Some(d) = data {
                err["data"] = d.clone();
            }
        }
        println!("{}", json!({ "error": err }));
    }
    eprintln!("error: {e:#}");
    std::process::exit(1);
}

async fn dispatch(command: Command) -> Result<()> {
    match command {
        Command::Keys { command, common } => keys::run(command, &common),
        Command::Balance { account, common } => chain::balance(&common, &account).await,
        Command::Transfer(args) => transfer::run(args).await,
        Command::Tx { hash, common } => chain::tx(&common, &hash).await,
        Command::Block { block, common } => chain::block(&common, &block).await,
        Command::Status { common } => chain::status(&common).await,
        Command::Supply { common } => chain::supply(&common).await,
        Command::Proof { account, common } => chain::proof(&common, &account).await,
    }
}

impl Common {
    pub fn client(&self) -> Client {
        Client::new(&self.rpc)
    }

    pub fn keystore(&self) -> Result<keystore::Keystore> {
        keystore::Keystore::open(self.keystore.clone())
    }

    /// Prints `value` as JSON in `--json` mode, else the text `human` builds.
    pub fn print(&self, value: &Value, human: impl FnOnce() -> String) {
        if self.json {
            println!("{value}");
        } else {
            let text = human();
            println!("{}", text.trim_end());
        }
    }

    /// Unlocks a keystore key (asking `passphrase` only if the key is encrypted).
    pub fn unlock(&self, name: &str, passphrase: &Passphrase) -> Result<unet_types::PrivateKey> {
        let file = self.keystore()?.get(name)?;
        let pass = if file.encrypted {
            passphrase.read()?
        } else {
            None
        };
        file.unlock(pass.as_deref().map(Vec::as_slice))
    }

    /// An address given as hex, or the address of a key in the keystore.
    pub fn resolve(&self, account: &str) -> Result<Address> {
        if keystore::looks_like_address(account) {
            return hexser::from_hex(account)
                .map_err(|e| anyhow!("{account:?} is not a valid address: {e}"));
        }
        let ks = self.keystore()?;
        if ks.contains(account) {
            return ks.get(account)?.address();
        }
        Err(anyhow!(
            "{account:?} is neither an address (64 hex digits) nor a key in {} (see `unet keys \
             list`)",
            ks.dir.display()
        ))
    }
}

/// An error whose details were already printed (as the command's JSON output): `run` adds no
/// `{"error": ..}` object for it, but the command still fails.
#[derive(Debug)]
pub struct Reported(pub String);

impl std::fmt::Display for Reported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Reported {}

/// Adds the node's URL to transport failures so the user knows where we looked.
pub fn node_error(common: &Common, e: ClientError) -> anyhow::Error {
    match e {
        ClientError::Transport(msg) => anyhow!(
            "cannot reach a node at {}: {msg} (start one with `unet devnet`, or pass --rpc URL / \
             set UNET_RPC)",
            common.rpc
        ),
        other => anyhow::Error::new(other),
    }
}

/// One line describing a receipt (`ok`, or `failed: reason`).
pub fn describe_receipt(r: &Value) -> String {
    chain::describe_result(r)
}

/// "1.5 UNC (1500000000000000000)" from a base-unit amount.
pub fn unc(amount: u128) -> String {
    format!("{} UNC ({amount} base units)", format_unc(amount))
}

/// A base-unit amount from a JSON string field, formatted with [`unc`].
pub fn unc_field(v: &Value) -> String {
    match v.as_str().and_then(|s| s.parse::<u128>().ok()) {
        Some(a) => unc(a),
        None => v.to_string(),
    }
}

/// A JSON field as plain text (strings without quotes).
pub fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}
