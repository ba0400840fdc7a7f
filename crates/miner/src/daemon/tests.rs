//! The daemon's exactly-once rules against the in-memory chain of [`super::fake`]: every
//! challenge answered, none twice, through lost transactions, lost receipts, replayed and
//! reordered notifications, dropped sockets and restarts from `state.json`.

use super::{
    chain::{MinerChain, Notification, Notifications},
    fake::{FakeChain, WINDOW},
    Miner, MinerConfig,
};
use crate::{home::MinerHome, soft::ChipFile, state::MinerState, ChipBackend, SoftBackend};
use futures::StreamExt;
use std::{sync::Arc, time::Duration};
use unet_poci::{secure_element::DevnetVendorCa, Curve};
use unet_types::chip::ChipId;

/// A miner home with `n` emulated chips.
struct Setup {
    _dir: tempfile::TempDir,
    home: MinerHome,
    chips: Vec<ChipId>,
    chain: FakeChain,
}

fn setup(n: usize) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let home = MinerHome::new(dir.path().join("miner"));
    let (owner, _) = home.init().unwrap();
    let ca = DevnetVendorCa::from_seed(b"daemon test ca").unwrap();
    for i in 0..n {
        ChipFile::provision(&ca, "BM1684X", None, Curve::P256)
            .unwrap()
            .save(&home.chips_dir().join(format!("chip{i}.json")))
            .unwrap();
    }
    let chips: Vec<ChipId> = SoftBackend::open(&home.chips_dir())
        .unwrap()
        .chips()
        .iter()
        .map(|c| c.chip_id)
        .collect();
    let chain = FakeChain::new(&owner, &chips);
    Setup {
        _dir: dir,
        home,
        chips,
        chain,
    }
}

impl Setup {
    /// A daemon over the home, as `unet miner run` builds it (a restart is a new one).
    fn miner(&self) -> Miner {
        let mut cfg = MinerConfig::new(self.home.clone(), vec!["fake".into()]);
        cfg.progress = false;
        cfg.resend_after_blocks = 3;
        cfg.max_backoff = Duration::from_millis(300);
        let backend = Arc::new(SoftBackend::open(&self.home.chips_dir()).unwrap());
        Miner::new(cfg, backend).unwrap()
    }

    fn state(&self) -> MinerState {
        MinerState::load(&self.home.state_path()).unwrap()
    }

    fn draw(&self, chips: &[ChipId]) {
        self.chain.world().draw.extend_from_slice(chips);
    }

    fn sent(&self) -> usize {
        self.chain.world().received.len()
    }
}

/// A session's start: status, subscription, catch-up.
async fn start(m: &mut Miner, chain: &FakeChain) -> Notifications {
    m.connect(chain).await.unwrap();
    let events = chain.subscribe().await.unwrap();
    m.catch_up(chain).await.unwrap();
    events
}

/// Handles what the socket has delivered (at least one notification).
async fn step(m: &mut Miner, chain: &FakeChain, events: &mut Notifications) -> anyhow::Result<()> {
    let first = tokio::time::timeout(Duration::from_secs(5), events.next())
        .await
        .expect("a notification");
    m.on_events(chain, first, events).await
}

/// Produces a block and lets the daemon handle it.
async fn block(m: &mut Miner, chain: &FakeChain, events: &mut Notifications) -> u64 {
    let h = chain.produce_block();
    step(m, chain, events).await.unwrap();
    h
}

#[tokio::test]
async fn every_challenge_is_answered_once_through_replayed_and_reordered_notifications() {
    let s = setup(3);
    let chain = &s.chain;
    let mut m = s.miner();
    let mut ev = start(&mut m, chain).await;
    s.draw(&s.chips);
    let h = block(&mut m, chain, &mut ev).await;
    assert_eq!(s.sent(), 1, "three answers, one transaction");
    assert_eq!(s.state().inflight.len(), 1, "recorded before it was sent");

    // The node sends the challenges and the block again (a replay): nothing new is signed.
    let replay: Vec<_> = s
        .chips
        .iter()
        .map(|id| super::chain::ChallengeEvent {
            chip_id: *id,
            height: h,
            beacon: unet_types::Digest([h as u8; 32]),
            deadline: Some(h + WINDOW),
        })
        .collect();
    chain.notify(Notification::Challenges(replay));
    chain.notify(Notification::Block {
        height: h,
        txs: vec![],
    });
    step(&mut m, chain, &mut ev).await.unwrap();
    assert_eq!(s.sent(), 1);

    block(&mut m, chain, &mut ev).await; // the answers land
    assert!(s.state().inflight.is_empty());

    // A block announced before its challenge event: still answered, once.
    chain.world().block_before_events = true;
    s.draw(&s.chips[..1]);
    let h2 = block(&mut m, chain, &mut ev).await;
    for _ in 0..3 {
        block(&mut m, chain, &mut ev).await;
    }
    for id in &s.chips {
        assert_eq!(chain.answer_txs(id, h), 1);
        assert_eq!(chain.applied(id, h), 1);
    }
    assert_eq!(chain.answer_txs(&s.chips[0], h2), 1);
    assert_eq!(chain.applied(&s.chips[0], h2), 1);
    let st = s.state();
    assert_eq!((st.totals.answered, st.totals.missed), (4, 0));
    assert!(chain.world().missed.is_empty());
}

#[tokio::test]
async fn a_lost_transaction_is_resent_byte_for_byte() {
    let s = setup(1);
    let (chain, id) = (&s.chain, s.chips[0]);
    let mut m = s.miner();
    let mut ev = start(&mut m, chain).await;
    chain.world().lose_sends = 1;
    s.draw(&[id]);
    let h = block(&mut m, chain, &mut ev).await;
    while chain.applied(&id, h) == 0 {
        assert!(chain.world().height < h + WINDOW, "never resent");
        block(&mut m, chain, &mut ev).await;
    }
    let w = chain.world();
    assert_eq!(w.received.len(), 2, "sent, then re-sent once");
    assert_eq!(w.received[0].hash(), w.received[1].hash(), "the same bytes");
    drop(w);
    assert_eq!(chain.answer_txs(&id, h), 1);
    assert_eq!(s.state().totals.answered, 1);
}

#[tokio::test]
async fn an_unknown_outcome_is_judged_by_the_nonce_and_the_chip() {
    let s = setup(1);
    let (chain, id) = (&s.chain, s.chips[0]);
    let mut m = s.miner();
    let mut ev = start(&mut m, chain).await;
    chain.world().forget_receipts = true;

    // Landed, receipt lost: the nonce moved and the chip is no longer pending -> counted.
    s.draw(&[id]);
    let h1 = block(&mut m, chain, &mut ev).await;
    for _ in 0..4 {
        block(&mut m, chain, &mut ev).await;
    }
    assert_eq!(chain.applied(&id, h1), 1);
    assert_eq!(chain.answer_txs(&id, h1), 1, "not answered again");
    assert!(s.state().inflight.is_empty());
    assert_eq!(s.state().totals.answered, 1);

    // Failed, receipt lost: the nonce moved but the chip still waits -> answered again.
    chain.world().fail_next_liveness = true;
    s.draw(&[id]);
    let h2 = block(&mut m, chain, &mut ev).await;
    while chain.applied(&id, h2) == 0 {
        assert!(chain.world().height < h2 + WINDOW, "never answered again");
        block(&mut m, chain, &mut ev).await;
    }
    assert_eq!(
        chain.answer_txs(&id, h2),
        2,
        "a new transaction (new nonce)"
    );
    let w = chain.world();
    let nonces: Vec<u64> = w.received.iter().map(|t| t.tx.nonce).collect();
    assert_eq!(nonces, vec![0, 1, 2]);
}

#[tokio::test]
async fn a_chip_read_failure_while_settling_does_not_count_the_answer() {
    let s = setup(1);
    let (chain, id) = (&s.chain, s.chips[0]);
    let mut m = s.miner();
    let mut ev = start(&mut m, chain).await;
    {
        let mut w = chain.world();
        w.forget_receipts = true;
        w.fail_next_liveness = true;
    }
    s.draw(&[id]);
    let h = block(&mut m, chain, &mut ev).await;
    // The transaction fails in the next block; three blocks later the daemon settles it
    // from the chain, and the node fails that chip read.
    for _ in 0..2 {
        block(&mut m, chain, &mut ev).await;
    }
    chain.world().chip_read_errors = 1;
    chain.produce_block();
    assert!(
        step(&mut m, chain, &mut ev).await.is_err(),
        "the session ends"
    );
    assert_eq!(s.state().inflight.len(), 1, "still in flight");
    // The next session settles it properly and answers again.
    let mut ev = start(&mut m, chain).await;
    while chain.applied(&id, h) == 0 {
        assert!(
            chain.world().height < h + WINDOW,
            "the challenge was skipped"
        );
        block(&mut m, chain, &mut ev).await;
    }
    assert!(chain.world().missed.is_empty());
}

#[tokio::test]
async fn a_restart_from_state_json_neither_repeats_nor_skips() {
    let s = setup(2);
    let chain = &s.chain;
    let (a, b) = (s.chips[0], s.chips[1]);
    let mut m = s.miner();
    let mut ev = start(&mut m, chain).await;
    s.draw(&[a, b]);
    let h = block(&mut m, chain, &mut ev).await;
    assert_eq!(s.sent(), 1);

    // Crash with the answers in the mempool; restart: nothing is signed again.
    drop((m, ev));
    chain.drop_socket();
    let mut m = s.miner();
    let mut ev = start(&mut m, chain).await;
    assert_eq!(s.sent(), 1, "the recorded answer is pending, not repeated");
    block(&mut m, chain, &mut ev).await;
    assert_eq!(chain.applied(&a, h), 1);

    // Down while a challenge comes: the restart answers it.
    drop((m, ev));
    chain.drop_socket();
    s.draw(&[b]);
    let h2 = chain.produce_block();
    chain.produce_block();
    let mut m = s.miner();
    let mut ev = start(&mut m, chain).await;
    block(&mut m, chain, &mut ev).await;
    assert_eq!(chain.applied(&b, h2), 1);
    for (id, height) in [(a, h), (b, h), (b, h2)] {
        assert_eq!(chain.answer_txs(&id, height), 1);
    }
    assert_eq!(s.state().totals.answered, 3);
    assert_eq!(s.state().answered.get(&hex::encode(b)), Some(&h2));
}

#[tokio::test]
async fn a_send_that_fails_after_the_node_took_it_is_not_signed_again() {
    let s = setup(1);
    let (chain, id) = (&s.chain, s.chips[0]);
    let mut m = s.miner();
    let mut ev = start(&mut m, chain).await;
    chain.world().fail_next_send_call = true;
    s.draw(&[id]);
    chain.produce_block();
    assert!(step(&mut m, chain, &mut ev).await.is_err());
    let mut ev = start(&mut m, chain).await;
    let h = chain.world().height;
    block(&mut m, chain, &mut ev).await;
    assert_eq!(chain.applied(&id, h), 1);
    assert_eq!(chain.answer_txs(&id, h), 1);
}

#[tokio::test]
async fn a_state_file_of_another_chain_is_refused() {
    let s = setup(1);
    let st = MinerState {
        genesis_hash: Some("cd".repeat(32)),
        ..Default::default()
    };
    st.save(&s.home.state_path()).unwrap();
    let mut m = s.miner();
    let err = m.connect(&s.chain).await.unwrap_err();
    assert!(err.downcast_ref::<super::Fatal>().is_some(), "{err:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_socket_is_reconnected_and_what_it_missed_is_answered() {
    let s = setup(2);
    let (a, b) = (s.chips[0], s.chips[1]);
    let m = s.miner();
    let metrics = m.metrics();
    let connects = s.chain.clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let daemon = tokio::spawn(m.run_on(
        move |_| Box::new(connects.clone()) as Box<dyn MinerChain>,
        async move {
            let _ = stopped.await;
        },
    ));
    let chain = &s.chain;
    let mut left = 1200;
    while !chain.subscribed() {
        tokio::time::sleep(Duration::from_millis(25)).await;
        left -= 1;
        assert!(left > 0, "the daemon never subscribed");
    }
    s.draw(&[a]);
    let h = chain.produce_block();
    let mut left = 1200;
    while chain.applied(&a, h) == 0 {
        tokio::time::sleep(Duration::from_millis(25)).await;
        if !chain.world().mempool.is_empty() {
            chain.produce_block();
        }
        left -= 1;
        assert!(left > 0, "first challenge never answered");
    }
    // The socket drops; a challenge comes while the daemon is away.
    chain.drop_socket();
    s.draw(&[b]);
    let h2 = chain.produce_block();
    let mut left = 1200;
    while chain.applied(&b, h2) == 0 {
        tokio::time::sleep(Duration::from_millis(25)).await;
        if chain.subscribed() {
            chain.produce_block();
        }
        left -= 1;
        assert!(
            left > 0,
            "the challenge missed while away was never answered"
        );
    }
    stop.send(()).unwrap();
    daemon.await.unwrap().unwrap();
    assert!(metrics.reconnects.get() >= 1);
    assert_eq!(chain.answer_txs(&a, h), 1);
    assert_eq!(chain.answer_txs(&b, h2), 1);
    assert!(chain.world().missed.is_empty());
}
