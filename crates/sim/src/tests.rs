use super::*;

fn small(miss_bps: u64) -> SimConfig {
    SimConfig {
        chips: 300,
        epoch_length: 40,
        challenges_per_epoch: 2,
        miss_bps,
        owners: 7,
        key_pool: 5,
        recheck_in_block: false,
    }
}

fn statuses(sim: &Simulation) -> (u64, u64) {
    let (mut online, mut unresponsive) = (0, 0);
    for i in 0..sim.config().chips {
        match sim.chip(i).unwrap().status {
            ChipStatus::Online => online += 1,
            ChipStatus::Unresponsive => unresponsive += 1,
            other => panic!("chip {i} is {other:?}"),
        }
    }
    (online, unresponsive)
}

#[test]
fn checking_answers_at_admission_leaves_the_state_rechecking_in_the_block_leaves() {
    let mut admitted = Simulation::build(small(1_000)).unwrap();
    let mut rechecked = admitted.clone();
    rechecked.set_recheck_in_block(true);
    let start = admitted.state_root();
    for _ in 0..2 {
        let a = admitted.run_epoch().unwrap();
        let r = rechecked.run_epoch().unwrap();
        assert_eq!(
            (a.answers, a.txs, a.unresponsive),
            (r.answers, r.txs, r.unresponsive)
        );
        assert!(a.answers > 0);
        assert!(a.phases.admit > Duration::ZERO);
        assert_eq!(r.phases.admit, Duration::ZERO);
    }
    assert_eq!(admitted.height(), 80);
    assert_ne!(admitted.state_root(), start, "the blocks changed nothing");
    assert_eq!(admitted.state_root(), rechecked.state_root());
    // 10% of the answers are dropped: some chips went unresponsive, most stayed online.
    let (online, unresponsive) = statuses(&admitted);
    assert!(
        unresponsive > 0 && online > unresponsive,
        "{online} {unresponsive}"
    );
}

#[test]
fn chips_that_answer_everything_stay_online_and_silent_ones_go_unresponsive() {
    let mut diligent = Simulation::build(small(0)).unwrap();
    let f = diligent.run_epoch().unwrap();
    let f2 = diligent.run_epoch().unwrap();
    // Every chip is challenged twice an epoch, and every challenge is answered (the last
    // block's challenges are answered in the next epoch's first block).
    assert!(
        f.answers + f2.answers >= 300 * 2 * 2 - 300,
        "{} {}",
        f.answers,
        f2.answers
    );
    assert_eq!(f2.unresponsive, 0);
    assert_eq!(statuses(&diligent), (300, 0));

    // Chips that never answer: each goes unresponsive once a challenge to it expires (the
    // beacon's draw leaves a few unchallenged for a while), and none ever comes back.
    let mut silent = Simulation::build(small(10_000)).unwrap();
    let mut last = 0;
    for _ in 0..3 {
        let f = silent.run_epoch().unwrap();
        assert_eq!((f.answers, f.txs, f.bytes), (0, 0, 0));
        let (online, unresponsive) = statuses(&silent);
        assert_eq!(online + unresponsive, 300);
        assert_eq!(f.unresponsive, unresponsive as i64);
        assert!(unresponsive >= last, "a silent chip came back online");
        last = unresponsive;
    }
    assert!(
        last >= 295,
        "only {last} of 300 silent chips went unresponsive in 3 epochs"
    );
}

#[test]
fn impossible_configurations_are_refused() {
    for bad in [
        SimConfig {
            chips: 0,
            ..small(0)
        },
        SimConfig {
            owners: 0,
            ..small(0)
        },
        SimConfig {
            key_pool: 0,
            ..small(0)
        },
        SimConfig {
            epoch_length: 9,
            ..small(0)
        },
        SimConfig {
            miss_bps: 10_001,
            ..small(0)
        },
    ] {
        assert!(Simulation::build(bad.clone()).is_err(), "{bad:?}");
    }
}
