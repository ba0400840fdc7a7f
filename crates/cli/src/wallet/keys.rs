//! `unet keys new|import|list|show`.

use super::{Common, Passphrase};
use anyhow::Result;
use clap::Subcommand;
use serde_json::{json, Value};
use std::path::PathBuf;
use unet_keystore::{self as keystore, KeyFile};
use unet_types::PrivateKey;

#[derive(Subcommand)]
pub enum KeysCommand {
    /// Generate a new key. Without a passphrase option it is stored unencrypted.
    New {
        /// Name of the key in the keystore.
        name: String,
        #[command(flatten)]
        passphrase: Passphrase,
    },
    /// Import a secret key file: hex of the 32-byte ed25519 secret, as in a devnet's
    /// faucet.key (the file must not be readable by other users).
    Import {
        /// Name of the key in the keystore.
        name: String,
        /// File holding the secret key.
        #[arg(long, value_name = "FILE")]
        secret_file: PathBuf,
        #[command(flatten)]
        passphrase: Passphrase,
    },
    /// List the keys in the keystore (name, address, whether encrypted).
    List,
    /// Show one key's address (never its secret).
    Show {
        /// Name of the key in the keystore.
        name: String,
    },
}

pub fn run(command: KeysCommand, common: &Common) -> Result<()> {
    let ks = common.keystore()?;
    match command {
        KeysCommand::New { name, passphrase } => {
            keystore::check_name(&name)?;
            let pass = passphrase.read()?;
            let key = keystore::generate();
            store(
                common,
                &ks,
                &name,
                &key,
                pass.as_deref().map(Vec::as_slice),
                "created",
            )
        }
        KeysCommand::Import {
            name,
            secret_file,
            passphrase,
        } => {
            keystore::check_name(&name)?;
            let pass = passphrase.read()?;
            let key: PrivateKey = unet_node::home::read_key(&secret_file)?;
            store(
                common,
                &ks,
                &name,
                &key,
                pass.as_deref().map(Vec::as_slice),
                "imported",
            )
        }
        KeysCommand::List => {
            let entries = ks.list()?;
            let views: Vec<Value> = entries
                .iter()
                .map(|(name, f)| match f {
                    Ok(f) => view(f, &ks.path(name)),
                    Err(e) => json!({"name": name, "error": format!("{e:#}")}),
                })
                .collect();
            common.print(&Value::Array(views.clone()), || {
                if views.is_empty() {
                    return format!(
                        "no keys in {} (create one with `unet keys new NAME`)",
                        ks.dir.display()
                    );
                }
                let mut out = format!("keys in {}:\n", ks.dir.display());
                for v in &views {
                    let name = v["name"].as_str().unwrap_or_default();
                    if let Some(e) = v.get("error") {
                        out += &format!("  {name:<16} unreadable: {}\n", super::text(e));
                    } else {
                        let enc = if v["encrypted"] == true {
                            "encrypted"
                        } else {
                            "UNENCRYPTED (secret stored in plain text)"
                        };
                        out += &format!("  {name:<16} {}  {enc}\n", super::text(&v["address"]));
                    }
                }
                out
            });
            Ok(())
        }
        KeysCommand::Show { name } => {
            let f = ks.get(&name)?;
            f.address()?;
            let v = view(&f, &ks.path(&name));
            common.print(&v, || describe(&v));
            Ok(())
        }
    }
}

fn store(
    common: &Common,
    ks: &keystore::Keystore,
    name: &str,
    key: &PrivateKey,
    passphrase: Option<&[u8]>,
    verb: &str,
) -> Result<()> {
    let file = KeyFile::new(name, key, passphrase)?;
    let path = ks.add(&file)?;
    let v = view(&file, &path);
    common.print(&v, || {
        let mut s = format!("{verb} key {name:?}\n{}", describe(&v));
        if !file.encrypted {
            s += "\nwarning: the key is stored UNENCRYPTED; use --passphrase-file or \
                  --passphrase-env to encrypt keys that hold real value";
        }
        s
    });
    Ok(())
}

fn view(f: &KeyFile, path: &std::path::Path) -> Value {
    json!({
        "name": f.name,
        "address": f.address,
        "encrypted": f.encrypted,
        "path": path.display().to_string(),
    })
}

fn describe(v: &Value) -> String {
    format!(
        "name       {}\naddress    {}\nencrypted  {}\nfile       {}",
        super::text(&v["name"]),
        super::text(&v["address"]),
        if v["encrypted"] == true {
            "yes (argon2id + xchacha20poly1305)"
        } else {
            "NO (secret stored in plain text)"
        },
        super::text(&v["path"]),
    )
}
