//! What the daemon must remember across restarts, kept in `HOME/state.json`.
//!
//! Rules that make answers exactly-once:
//! - an answer is recorded in `answered` (chip -> highest challenge height answered) and its
//!   signed transaction in `inflight` *before* the transaction is sent (write-ahead);
//! - a recorded transaction is only ever re-sent byte for byte (same hash, same nonce), so
//!   the chain can include it at most once;
//! - an answer is forgotten (and may be sent again) only when the chain says its transaction
//!   failed or can never land.
//!
//! The file is replaced atomically (write to a temporary file, fsync, rename).

use anyhow::{Context as _, Result};
use serde::{Deserialize, Serialize};
use std::{collections::BTreeMap, path::Path};

/// What a transaction in flight carries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum InflightKind {
    /// Answers to challenges.
    Liveness {
        /// The answers: (chip id hex, challenge height).
        responses: Vec<(String, u64)>,
    },
    /// A chip registration.
    Register {
        /// The chip registered, hex id.
        chip_id: String,
    },
}

/// A signed transaction sent (or about to be) and not yet seen final.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inflight {
    /// The transaction's hash, hex.
    pub hash: String,
    /// The owner nonce it uses.
    pub nonce: u64,
    /// The signed transaction, hex (re-sent as is).
    pub raw: String,
    /// Finalized height when it was first sent.
    pub sent_at: u64,
    /// Finalized height when it was last (re-)sent.
    #[serde(default)]
    pub last_sent: u64,
    /// What it carries (flattened into the JSON: `kind` and its fields).
    #[serde(flatten)]
    pub what: InflightKind,
}

/// Counters that survive restarts.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    /// Challenges answered in finalized transactions.
    pub answered: u64,
    /// Challenges whose window closed without an answer.
    pub missed: u64,
    /// Chips registered.
    pub registered: u64,
    /// Liveness transactions finalized.
    pub liveness_txs: u64,
    /// Transactions finalized with a failed receipt.
    pub failed_txs: u64,
}

/// The persistent state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MinerState {
    /// Genesis hash of the chain this state belongs to (a state of another chain is refused).
    pub genesis_hash: Option<String>,
    /// Last finalized height whose events were processed.
    pub last_height: u64,
    /// Per chip (hex id): the highest challenge height this miner has answered.
    pub answered: BTreeMap<String, u64>,
    /// Per chip: the last challenge height seen (for `unet miner status`).
    #[serde(default)]
    pub last_challenge: BTreeMap<String, u64>,
    /// Transactions sent and not yet seen final, in the order they were sent.
    pub inflight: Vec<Inflight>,
    /// Counters that survive restarts.
    #[serde(default)]
    pub totals: Totals,
}

impl MinerState {
    /// Loads the state, or a fresh one if the file does not exist.
    pub fn load(path: &Path) -> Result<Self> {
        match std::fs::read_to_string(path) {
            Ok(text) => serde_json::from_str(&text)
                .with_context(|| format!("{} is not a miner state file", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }

    /// Replaces the file atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        unet_types::private_file::write_atomic(path, serde_json::to_string(self)?.as_bytes())
            .with_context(|| format!("saving {}", path.display()))
    }

    /// Whether the challenge of `chip` at `height` was answered by this miner.
    pub fn is_answered(&self, chip: &str, height: u64) -> bool {
        self.answered.get(chip).is_some_and(|h| *h >= height)
    }

    /// Forgets an answer (its transaction failed or cannot land), if it is still the latest.
    pub fn forget_answer(&mut self, chip: &str, height: u64) {
        if self.answered.get(chip) == Some(&height) {
            self.answered.remove(chip);
        }
    }

    /// Nonces held by transactions in flight.
    pub fn inflight_nonces(&self) -> std::collections::BTreeSet<u64> {
        self.inflight.iter().map(|t| t.nonce).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips_atomically_and_tracks_answers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        assert_eq!(MinerState::load(&path).unwrap(), MinerState::default());
        let mut s = MinerState {
            last_height: 42,
            ..Default::default()
        };
        s.answered.insert("aa".into(), 40);
        s.inflight.push(Inflight {
            hash: "h".into(),
            nonce: 3,
            raw: "00".into(),
            sent_at: 41,
            last_sent: 41,
            what: InflightKind::Liveness {
                responses: vec![("aa".into(), 40)],
            },
        });
        s.save(&path).unwrap();
        assert!(!dir.path().join("state.json.tmp").exists());
        let back = MinerState::load(&path).unwrap();
        assert_eq!(back, s);
        assert!(back.is_answered("aa", 40));
        assert!(back.is_answered("aa", 39));
        assert!(!back.is_answered("aa", 41));
        assert!(!back.is_answered("bb", 1));
        let mut back = back;
        back.forget_answer("aa", 39);
        assert!(back.is_answered("aa", 40));
        back.forget_answer("aa", 40);
        assert!(!back.is_answered("aa", 40));
        std::fs::write(&path, "garbage").unwrap();
        assert!(MinerState::load(&path).is_err());
    }
}
