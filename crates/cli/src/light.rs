//! `unet light`: read the chain through an untrusted node, trusting only the chain's group key
//! (from the genesis file or given in hex). See `unet_client::light` for what is checked.

use anyhow::{anyhow, Context as _, Result};
use clap::{Args, Subcommand};
use serde_json::json;
use std::path::PathBuf;
use unet_client::{
    light::{CertifiedHeader, LightVerifier, VerifiedAccount},
    Client, DEFAULT_RPC,
};
use unet_types::{amount::format_unc, hexser, Address, Genesis};

/// Where the trusted group key comes from, and which node to ask.
#[derive(Args, Clone, Debug)]
pub struct LightCommon {
    /// URL of the (untrusted) node's API.
    #[arg(long, env = "UNET_RPC", default_value = DEFAULT_RPC)]
    pub rpc: String,
    /// Genesis file (genesis.toml) whose `consensus_polynomial` gives the group key.
    #[arg(long, value_name = "FILE", required_unless_present = "group_key")]
    pub genesis: Option<PathBuf>,
    /// The chain's threshold group public key in hex, instead of a genesis file.
    #[arg(long, value_name = "HEX", conflicts_with = "genesis")]
    pub group_key: Option<String>,
    /// Print machine-readable JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `unet light ...`.
#[derive(Subcommand, Debug)]
pub enum LightCommand {
    /// An account's balance and nonce, verified: finalization certificate under the group key,
    /// block header against the certificate, merkle proof against the header's state root.
    Account {
        /// The account's address (64 hex digits).
        address: String,
        #[command(flatten)]
        common: LightCommon,
    },
    /// A chip's registry entry (status, owner, model), verified the same way.
    Chip {
        /// The chip id (64 hex digits).
        chip_id: String,
        #[command(flatten)]
        common: LightCommon,
    },
}

/// Runs `unet light ...`; fails (non-zero exit) on any check that does not hold.
pub fn run(command: LightCommand) -> Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    match command {
        LightCommand::Account { address, common } => rt.block_on(account(&address, &common)),
        LightCommand::Chip { chip_id, common } => rt.block_on(chip(&chip_id, &common)),
    }
}

fn verifier(common: &LightCommon) -> Result<LightVerifier> {
    match (&common.group_key, &common.genesis) {
        (Some(key), _) => LightVerifier::from_hex(key).map_err(|e| anyhow!("--group-key: {e}")),
        (None, Some(path)) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            let genesis = Genesis::from_toml(&text)
                .map_err(|e| anyhow!("{}: not a genesis file: {e}", path.display()))?;
            LightVerifier::from_genesis(&genesis).map_err(|e| anyhow!("{}: {e}", path.display()))
        }
        (None, None) => Err(anyhow!("give --genesis FILE or --group-key HEX")),
    }
}

async fn account(address: &str, common: &LightCommon) -> Result<()> {
    let address: Address = hexser::from_hex(address.trim_start_matches("0x"))
        .map_err(|e| anyhow!("{address:?} is not an address (64 hex digits): {e}"))?;
    let verifier = verifier(common)?;
    let client = Client::new(&common.rpc);
    let verified = verifier
        .account(&client, &address)
        .await
        .map_err(|e| anyhow!("REFUSED: {e}"))?;
    print(&verifier, &verified, common.json);
    Ok(())
}

async fn chip(chip_id: &str, common: &LightCommon) -> Result<()> {
    let bytes = hex::decode(chip_id.trim_start_matches("0x"))
        .map_err(|e| anyhow!("{chip_id:?} is not a chip id (64 hex digits): {e}"))?;
    let id: [u8; 32] = bytes
        .try_into()
        .map_err(|_| anyhow!("{chip_id:?} is not a chip id (64 hex digits)"))?;
    let verifier = verifier(common)?;
    let client = Client::new(&common.rpc);
    let v = verifier
        .chip(&client, &id)
        .await
        .map_err(|e| anyhow!("REFUSED: {e}"))?;
    let c = &v.certified;
    if common.json {
        let chip = v.chip.as_ref().map(|chip| {
            json!({
                "status": chip.status.as_str(),
                "owner": hexser::to_hex(&chip.owner),
                "model": chip.model,
                "serial": chip.serial,
                "registered_height": chip.registered_height,
            })
        });
        let out = json!({
            "chip_id": hex::encode(v.chip_id),
            "registered": v.chip.is_some(),
            "chip": chip,
            "verified": verified_json(&verifier, c),
        });
        println!("{out:#}");
        return Ok(());
    }
    println!("chip         {}", hex::encode(v.chip_id));
    match &v.chip {
        Some(chip) => {
            println!("status       {}", chip.status.as_str());
            println!("owner        {}", hexser::to_hex(&chip.owner));
            println!("model        {} (serial {})", chip.model, chip.serial);
            println!("registered   at height {}", chip.registered_height);
        }
        None => println!("status       not registered (proven absent)"),
    }
    print_verified(&verifier, c, "chip");
    Ok(())
}

fn verified_json(verifier: &LightVerifier, c: &CertifiedHeader) -> serde_json::Value {
    json!({
        "group_key": verifier.group_key_hex(),
        "height": c.header.height.get(),
        "block": hex::encode(c.block),
        "state_root": hex::encode(c.header.state_root),
        "certified_height": c.certified_height,
        "certificate_epoch": c.round.0,
        "certificate_view": c.round.1,
    })
}

fn print(verifier: &LightVerifier, v: &VerifiedAccount, json: bool) {
    let (balance, nonce) = v.account.as_ref().map_or((0, 0), |a| (a.balance, a.nonce));
    let c = &v.certified;
    if json {
        let out = json!({
            "address": hexser::to_hex(&v.address),
            "exists": v.account.is_some(),
            "balance": balance.to_string(),
            "balance_unc": format_unc(balance),
            "nonce": nonce,
            "verified": verified_json(verifier, c),
        });
        println!("{out:#}");
        return;
    }
    println!("address      {}", hexser::to_hex(&v.address));
    match &v.account {
        Some(_) => println!("balance      {} UNC", format_unc(balance)),
        None => println!("balance      0 UNC (no account: proven absent)"),
    }
    println!("nonce        {nonce}");
    print_verified(verifier, c, "account");
}

fn print_verified(verifier: &LightVerifier, c: &CertifiedHeader, what: &str) {
    println!("verified:");
    println!(
        "  certificate  threshold BLS finalization (epoch {}, view {}) valid under group key {}…",
        c.round.0,
        c.round.1,
        &verifier.group_key_hex()[..16]
    );
    if c.certified_height == c.header.height.get() {
        println!(
            "  block        height {} hash {} is the block it finalizes",
            c.header.height.get(),
            hex::encode(c.block)
        );
    } else {
        println!(
            "  block        height {} hash {} is an ancestor (parent links checked) of the \
             finalized block at height {}",
            c.header.height.get(),
            hex::encode(c.block),
            c.certified_height
        );
    }
    println!(
        "  state root   {} (from the certified header)",
        hex::encode(c.header.state_root)
    );
    println!("  proof        merkle proof of the {what}'s state key verifies against that root");
}
