//! Table-driven tests of single transition rules, driving one replica by hand.

use ed25519_dalek::{Signature, SigningKey};
use tracechain_consensus::signing::{
    new_view_bytes, pre_prepare_bytes, prepare_bytes, sign, view_change_message_bytes,
};
use tracechain_consensus::{
    BlockHash, ChainHead, CommitCertificate, Config, FetchedBlock, Input, Message, Mode, NewView,
    Output, PrePrepare, PreparedCertificate, Replica, ReplicaId, Status, TimerId, ValidatorSet,
    ViewChange, Vote, sign_commit_vote,
};

const CHAIN: &str = "rules-chain";

fn hash_of(block: &[u8]) -> Option<BlockHash> {
    Some(*blake3::hash(block).as_bytes())
}

struct Cluster {
    keys: Vec<SigningKey>,
    set: ValidatorSet,
}

impl Cluster {
    fn new(n: usize) -> Self {
        let keys: Vec<SigningKey> = (0..n)
            .map(|i| SigningKey::from_bytes(&[i as u8 + 11; 32]))
            .collect();
        let set = ValidatorSet::new(CHAIN, keys.iter().map(|k| k.verifying_key()).collect());
        Self { keys, set }
    }

    fn config(&self, i: u32) -> Config {
        Config::new(
            self.set.clone(),
            ReplicaId(i),
            self.keys[i as usize].clone(),
            hash_of,
        )
    }

    fn replica(&self, i: u32) -> Replica {
        self.replica_with(i, |_| {})
    }

    /// A started replica whose configuration `tweak` adjusted.
    fn replica_with(&self, i: u32, tweak: impl FnOnce(&mut Config)) -> Replica {
        let mut config = self.config(i);
        tweak(&mut config);
        let mut r = Replica::new(config, ChainHead::genesis(), 0).expect("config");
        r.handle(Input::Start);
        r
    }

    fn pre_prepare(&self, from: u32, view: u64, height: u64, block: &[u8]) -> Message {
        let hash = hash_of(block).unwrap();
        Message::PrePrepare(PrePrepare {
            view,
            height,
            block_hash: hash,
            block: block.to_vec(),
            from: ReplicaId(from),
            signature: sign(
                &self.keys[from as usize],
                &pre_prepare_bytes(CHAIN, height, view, &hash),
            ),
        })
    }

    fn prepare(&self, from: u32, view: u64, height: u64, hash: BlockHash) -> Message {
        Message::Prepare(Vote {
            view,
            height,
            block_hash: hash,
            from: ReplicaId(from),
            signature: sign(
                &self.keys[from as usize],
                &prepare_bytes(CHAIN, height, view, &hash),
            ),
        })
    }

    fn commit(&self, from: u32, view: u64, height: u64, hash: BlockHash) -> Message {
        Message::Commit(Vote {
            view,
            height,
            block_hash: hash,
            from: ReplicaId(from),
            signature: sign_commit_vote(&self.keys[from as usize], CHAIN, height, view, &hash),
        })
    }

    fn certificate(
        &self,
        signers: &[u32],
        height: u64,
        view: u64,
        hash: BlockHash,
    ) -> CommitCertificate {
        CommitCertificate {
            height,
            view,
            block_hash: hash,
            signatures: signers
                .iter()
                .map(|&i| {
                    (
                        ReplicaId(i),
                        sign_commit_vote(&self.keys[i as usize], CHAIN, height, view, &hash),
                    )
                })
                .collect(),
        }
    }

    fn prepared(
        &self,
        signers: &[u32],
        height: u64,
        view: u64,
        block: &[u8],
    ) -> PreparedCertificate {
        let hash = hash_of(block).unwrap();
        PreparedCertificate {
            view,
            height,
            block_hash: hash,
            block: block.to_vec(),
            prepares: signers
                .iter()
                .map(|&i| {
                    (
                        ReplicaId(i),
                        sign(
                            &self.keys[i as usize],
                            &prepare_bytes(CHAIN, height, view, &hash),
                        ),
                    )
                })
                .collect(),
        }
    }

    fn view_change(
        &self,
        from: u32,
        view: u64,
        prepared: Option<PreparedCertificate>,
    ) -> ViewChange {
        let mut vc = ViewChange {
            view,
            committed_height: 0,
            committed: None,
            prepared,
            from: ReplicaId(from),
            signature: Signature::from_bytes(&[0; 64]),
        };
        vc.signature = sign(
            &self.keys[from as usize],
            &view_change_message_bytes(CHAIN, &vc),
        );
        vc
    }

    fn new_view(&self, view: u64, view_changes: Vec<ViewChange>) -> Message {
        let from = self.set.primary(view);
        Message::NewView(NewView {
            view,
            signature: sign(
                &self.keys[from.0 as usize],
                &new_view_bytes(CHAIN, view, &view_changes),
            ),
            view_changes,
            from,
        })
    }
}

/// The peer faults reported, as (peer, fault name), and the other outputs.
fn split_faults(out: Vec<Output>) -> (Vec<(ReplicaId, &'static str)>, Vec<Output>) {
    let (faults, rest): (Vec<Output>, Vec<Output>) = out
        .into_iter()
        .partition(|o| matches!(o, Output::PeerFault { .. }));
    let faults = faults
        .into_iter()
        .filter_map(|o| match o {
            Output::PeerFault { peer, fault } => Some((peer, fault.name())),
            _ => None,
        })
        .collect();
    (faults, rest)
}

fn msg(m: Message) -> Input {
    Input::Message(m)
}

fn broadcasts(out: &[Output]) -> Vec<&Message> {
    out.iter()
        .filter_map(|o| match o {
            Output::Broadcast(m) => Some(m),
            _ => None,
        })
        .collect()
}

fn validation_requests(out: &[Output]) -> usize {
    out.iter()
        .filter(|o| matches!(o, Output::RequestValidation { .. }))
        .count()
}

fn valid(height: u64, view: u64, block: &[u8]) -> Input {
    Input::ValidationResult {
        height,
        view,
        block_hash: hash_of(block).unwrap(),
        valid: true,
    }
}

/// Every broadcast of a signed vote is preceded by a persist in the same batch.
fn assert_persist_before_votes(out: &[Output]) {
    let mut persisted = false;
    for o in out {
        match o {
            Output::Persist(_) => persisted = true,
            Output::Broadcast(
                Message::PrePrepare(_)
                | Message::Prepare(_)
                | Message::Commit(_)
                | Message::ViewChange(_),
            ) => {
                assert!(persisted, "a vote left before its persist: {out:?}")
            }
            _ => {}
        }
    }
}

#[test]
fn single_replica_commits_with_a_certificate() {
    let c = Cluster::new(1);
    let mut r = Replica::new(c.config(0), ChainHead::genesis(), 0).unwrap();
    let out = r.handle(Input::Start);
    assert!(out.contains(&Output::NeedProposal { height: 1, view: 0 }));
    let block = b"block one".to_vec();
    let out = r.handle(Input::Propose {
        height: 1,
        view: 0,
        block: block.clone(),
        block_hash: hash_of(&block).unwrap(),
    });
    assert_persist_before_votes(&out);
    assert_eq!(validation_requests(&out), 1);
    let out = r.handle(valid(1, 0, &block));
    assert_persist_before_votes(&out);
    let commit = out.iter().find_map(|o| match o {
        Output::Commit { block, certificate } => Some((block.clone(), certificate.clone())),
        _ => None,
    });
    let (committed, cert) = commit.expect("n = 1 commits at once");
    assert_eq!(committed, block);
    assert_eq!(
        cert.verify_for(&c.set, 1, &hash_of(&block).unwrap()),
        Ok(())
    );
    assert_eq!(r.committed_height(), 1);
    assert!(out.contains(&Output::NeedProposal { height: 2, view: 0 }));
}

#[test]
fn backup_runs_the_normal_case_in_order() {
    let c = Cluster::new(4);
    let mut r = c.replica(1);
    let block = b"b1".to_vec();
    let h = hash_of(&block).unwrap();
    let out = r.handle(msg(c.pre_prepare(0, 0, 1, &block)));
    assert_eq!(validation_requests(&out), 1);
    let out = r.handle(valid(1, 0, &block));
    assert_persist_before_votes(&out);
    assert!(matches!(broadcasts(&out)[..], [Message::Prepare(v)] if v.block_hash == h));
    assert!(
        broadcasts(&r.handle(msg(c.prepare(0, 0, 1, h)))).is_empty(),
        "2 of 3 prepares"
    );
    let out = r.handle(msg(c.prepare(2, 0, 1, h)));
    assert_persist_before_votes(&out);
    assert!(matches!(broadcasts(&out)[..], [Message::Commit(v)] if v.block_hash == h));
    assert!(
        r.handle(msg(c.commit(0, 0, 1, h)))
            .iter()
            .all(|o| !matches!(o, Output::Commit { .. }))
    );
    let out = r.handle(msg(c.commit(3, 0, 1, h)));
    assert!(out.iter().any(
        |o| matches!(o, Output::Commit { certificate, .. } if certificate.signatures.len() == 3)
    ));
    assert_eq!(r.committed_height(), 1);
}

#[test]
fn a_correct_replica_never_prepares_an_invalid_block() {
    let c = Cluster::new(4);
    let mut r = c.replica(1);
    let block = b"bad".to_vec();
    r.handle(msg(c.pre_prepare(0, 0, 1, &block)));
    let out = r.handle(Input::ValidationResult {
        height: 1,
        view: 0,
        block_hash: hash_of(&block).unwrap(),
        valid: false,
    });
    assert!(
        !broadcasts(&out)
            .iter()
            .any(|m| matches!(m, Message::Prepare(_)))
    );
    // The primary proposed an invalid block: ask for the next view.
    assert!(
        broadcasts(&out)
            .iter()
            .any(|m| matches!(m, Message::ViewChange(vc) if vc.view == 1))
    );
    assert_persist_before_votes(&out);
}

#[test]
fn a_restarted_backup_never_prepares_two_blocks_at_one_view_and_height() {
    let c = Cluster::new(4);
    let mut r = c.replica(1);
    let (x, y) = (b"x".to_vec(), b"y".to_vec());
    r.handle(msg(c.pre_prepare(0, 0, 1, &x)));
    let out = r.handle(valid(1, 0, &x));
    let state = out
        .iter()
        .find_map(|o| match o {
            Output::Persist(s) => Some(s.clone()),
            _ => None,
        })
        .expect("prepare persisted");
    // Crash; restart from what was persisted. The primary equivocates: it sends y.
    let mut r = Replica::restore(c.config(1), state.clone(), ChainHead::genesis()).unwrap();
    r.handle(Input::Start);
    let out = r.handle(msg(c.pre_prepare(0, 0, 1, &y)));
    assert_eq!(validation_requests(&out), 1, "the block is still checked");
    let out = r.handle(valid(1, 0, &y));
    assert!(
        broadcasts(&out).is_empty(),
        "signed a second prepare: {out:?}"
    );
    // The same block again is fine (a re-send, same signature).
    let mut r = Replica::restore(c.config(1), state, ChainHead::genesis()).unwrap();
    r.handle(Input::Start);
    r.handle(msg(c.pre_prepare(0, 0, 1, &x)));
    assert!(matches!(
        broadcasts(&r.handle(valid(1, 0, &x)))[..],
        [Message::Prepare(_)]
    ));
}

#[test]
fn a_restarted_primary_never_proposes_two_blocks_at_one_view_and_height() {
    let c = Cluster::new(4);
    let mut r = c.replica(0);
    let x = b"x".to_vec();
    let out = r.handle(Input::Propose {
        height: 1,
        view: 0,
        block: x.clone(),
        block_hash: hash_of(&x).unwrap(),
    });
    let state = out
        .iter()
        .find_map(|o| match o {
            Output::Persist(s) => Some(s.clone()),
            _ => None,
        })
        .unwrap();
    let mut r = Replica::restore(c.config(0), state, ChainHead::genesis()).unwrap();
    let out = r.handle(Input::Start);
    assert!(out.contains(&Output::NeedProposal { height: 1, view: 0 }));
    let y = b"y".to_vec();
    let out = r.handle(Input::Propose {
        height: 1,
        view: 0,
        block: y.clone(),
        block_hash: hash_of(&y).unwrap(),
    });
    assert!(
        broadcasts(&out).is_empty(),
        "proposed a second block: {out:?}"
    );
}

#[test]
fn hostile_messages_are_dropped() {
    let c = Cluster::new(4);
    let outsider = SigningKey::from_bytes(&[99; 32]);
    let block = b"b".to_vec();
    let h = hash_of(&block).unwrap();
    let mut bad_sig = c.prepare(2, 0, 1, h);
    if let Message::Prepare(v) = &mut bad_sig {
        v.signature = Signature::from_bytes(&[5; 64]);
    }
    let mut impersonated = c.prepare(2, 0, 1, h);
    if let Message::Prepare(v) = &mut impersonated {
        v.from = ReplicaId(3); // signed by 2, claims 3
    }
    let mut mismatched = c.pre_prepare(0, 0, 1, &block);
    if let Message::PrePrepare(m) = &mut mismatched {
        m.block = b"other bytes".to_vec(); // the signed hash is not this block's
    }
    let non_member = Message::Prepare(Vote {
        view: 0,
        height: 1,
        block_hash: h,
        from: ReplicaId(7),
        signature: sign(&outsider, &prepare_bytes(CHAIN, 1, 0, &h)),
    });
    let forged_status = Message::Status(Status {
        from: ReplicaId(2),
        certificate: c.certificate(&[2, 2, 2], 9, 0, h),
    });
    let mut forged_view_change = c.view_change(2, 1, None);
    forged_view_change.committed_height = 5;
    forged_view_change.committed = Some(c.certificate(&[2, 2, 2], 5, 0, h));
    forged_view_change.signature = sign(
        &c.keys[2],
        &view_change_message_bytes(CHAIN, &forged_view_change),
    );
    let oversized = c.pre_prepare(0, 0, 1, &[7; 65]);
    let mut forged_far = c.commit(2, 0, 1_000, h);
    if let Message::Commit(v) = &mut forged_far {
        v.signature = Signature::from_bytes(&[6; 64]);
    }
    let cases: Vec<(&str, Message)> = vec![
        ("non-member", non_member),
        ("bad signature", bad_sig),
        ("impersonation", impersonated),
        (
            "pre-prepare not from the primary",
            c.pre_prepare(2, 0, 1, &block),
        ),
        ("block does not match its hash", mismatched),
        ("vote for a view far ahead", c.prepare(2, 50, 1, h)),
        ("far-future height, bad signature", forged_far),
        ("status with a repeated signer", forged_status),
        (
            "new view without a quorum",
            c.new_view(2, vec![c.view_change(2, 2, None)]),
        ),
        (
            "view change from far ahead",
            Message::ViewChange(c.view_change(2, 1_000, None)),
        ),
        (
            "view change with a forged commit certificate",
            Message::ViewChange(forged_view_change),
        ),
    ];
    // Each case's report: the peer blamed and why; `None` where a correct but slow or
    // partitioned replica could have sent it (dropped without blame).
    let expected: [Option<(u32, &str)>; 12] = [
        Some((7, "not_a_member")),
        Some((2, "bad_signature")),
        Some((3, "bad_signature")),
        Some((2, "not_primary")),
        Some((0, "block_mismatch")),
        None,
        Some((2, "bad_signature")),
        Some((2, "invalid_certificate")),
        Some((2, "invalid_new_view")),
        None,
        Some((2, "invalid_view_change")),
        Some((0, "oversized_block")),
    ];
    let cases = cases.into_iter().chain([("oversized block", oversized)]);
    for ((name, m), expected) in cases.zip(expected) {
        let mut r = c.replica_with(1, |cfg| cfg.limits.max_block_bytes = 64);
        let before = r.held_items();
        let out = r.handle(msg(m));
        let (faults, rest) = split_faults(out);
        assert!(rest.is_empty(), "{name}: {rest:?}");
        let expected: Vec<(ReplicaId, &str)> = expected
            .map(|(p, f)| (ReplicaId(p), f))
            .into_iter()
            .collect();
        assert_eq!(faults, expected, "{name}");
        assert_eq!(r.held_items(), before, "{name} was kept");
        assert_eq!(r.mode(), Mode::Normal { view: 0 }, "{name}");
    }
}

#[test]
fn a_second_signed_vote_for_another_block_is_reported_as_equivocation() {
    let c = Cluster::new(4);
    let (h, other) = ([1; 32], [2; 32]);
    let mut r = c.replica(1);
    let (faults, _) = split_faults(r.handle(msg(c.prepare(2, 0, 1, h))));
    assert!(faults.is_empty());
    // The same vote again: a duplicate, not a fault.
    let (faults, _) = split_faults(r.handle(msg(c.prepare(2, 0, 1, h))));
    assert!(faults.is_empty());
    // Another block, signed: equivocation; unsigned: a forgery. Either way the first
    // vote is the one that counts.
    let (faults, rest) = split_faults(r.handle(msg(c.prepare(2, 0, 1, other))));
    assert_eq!(faults, [(ReplicaId(2), "equivocation")]);
    assert!(rest.is_empty(), "{rest:?}");
    let mut forged = c.commit(3, 0, 1, h);
    r.handle(msg(forged.clone()));
    if let Message::Commit(v) = &mut forged {
        v.block_hash = other;
    }
    let (faults, _) = split_faults(r.handle(msg(forged)));
    assert_eq!(faults, [(ReplicaId(3), "bad_signature")]);
}

#[test]
fn stale_and_far_ahead_evidence() {
    let c = Cluster::new(4);
    let h = [1; 32];
    // A signed vote far ahead proves we are behind: fetch from its sender.
    let mut r = c.replica(1);
    let out = r.handle(msg(c.commit(2, 0, 100, h)));
    assert!(
        out.contains(&Output::FetchBlocks {
            from: 1,
            to: 64,
            peer: ReplicaId(2)
        }),
        "{out:?}"
    );
    // Votes for the next heights are buffered, not evidence.
    let mut r = c.replica(1);
    assert!(r.handle(msg(c.commit(2, 0, 2, h))).is_empty());
    assert_eq!(r.held_items(), 1);
}

#[test]
fn memory_stays_bounded_under_a_flood() {
    let c = Cluster::new(4);
    let mut r = c.replica(1);
    let mut max = 0;
    for i in 0..3_000u64 {
        let from = (i % 4) as u32;
        if from == 1 {
            continue;
        }
        let hash = *blake3::hash(&i.to_be_bytes()).as_bytes();
        for m in [
            c.prepare(from, i % 7, 1 + i % 3, hash),
            c.commit(from, i % 5, 1 + i % 4, hash),
            c.pre_prepare(0, (i % 3) * 4, 1 + i % 3, &i.to_be_bytes()),
            Message::ViewChange(c.view_change(from, 1 + i % 90, None)),
        ] {
            r.handle(msg(m));
            max = max.max(r.held_items());
        }
        r.handle(Input::TxsSeen(vec![hash]));
    }
    // 7 views × (1 + 2×4) log entries + 2 heights × 7 views × 4 × 3 buffered + 4 view
    // changes + tracked transactions (3,000 here, capped by max_tracked_txs).
    assert!(max <= 7 * 9 + 2 * 7 * 4 * 3 + 4 + 3_000, "held {max}");
}

#[test]
fn view_timeout_doubles_is_capped_and_resets_on_commit() {
    // n = 7 and replica 6, which is not the primary of views 1..=5.
    let c = Cluster::new(7);
    let mut cfg = c.config(6);
    cfg.timeouts.view_base_ms = 1_000;
    cfg.timeouts.view_max_ms = 5_000;
    let mut r = Replica::new(cfg, ChainHead::genesis(), 0).unwrap();
    r.handle(Input::Start);
    // (fired timer, view asked for, timer armed once 2f+1 ask for it)
    let rows = [
        (TimerId::Progress { view: 0, height: 1 }, 1, 2_000),
        (TimerId::ViewChange { view: 1 }, 2, 4_000),
        (TimerId::ViewChange { view: 2 }, 3, 5_000),
        (TimerId::ViewChange { view: 3 }, 4, 5_000),
        (TimerId::ViewChange { view: 4 }, 5, 5_000),
    ];
    for (timer, view, after) in rows {
        let out = r.handle(Input::TimerFired(timer));
        assert!(
            broadcasts(&out)
                .iter()
                .any(|m| matches!(m, Message::ViewChange(vc) if vc.view == view)),
            "{timer:?}"
        );
        let mut armed = None;
        for i in 1..=4 {
            let out = r.handle(msg(Message::ViewChange(c.view_change(i, view, None))));
            armed = armed.or(out.iter().find_map(|o| match o {
                Output::SetTimer {
                    timer: TimerId::ViewChange { view: v },
                    after_ms,
                } if *v == view => Some(*after_ms),
                _ => None,
            }));
        }
        assert_eq!(armed, Some(after), "view {view}");
    }
    // Progress resets the backoff: a commit (here via a fetched certificate)...
    let block = b"b1".to_vec();
    let h = hash_of(&block).unwrap();
    let cert = c.certificate(&[0, 1, 2, 3, 4], 1, 0, h);
    let out = r.handle(Input::FetchedBlocks {
        peer: ReplicaId(0),
        blocks: vec![FetchedBlock {
            block,
            block_hash: h,
            certificate: cert.clone(),
        }],
    });
    assert!(out.iter().any(|o| matches!(o, Output::Commit { .. })));
    // ...so the first round of the next view gets the base timeout again.
    let vcs: Vec<ViewChange> = (0..5u32)
        .map(|i| {
            let mut vc = c.view_change(i, 7, None);
            vc.committed_height = 1;
            vc.committed = Some(cert.clone());
            vc.signature = sign(&c.keys[i as usize], &view_change_message_bytes(CHAIN, &vc));
            vc
        })
        .collect();
    let out = r.handle(msg(c.new_view(7, vcs)));
    assert_eq!(r.mode(), Mode::Normal { view: 7 });
    assert!(
        out.contains(&Output::SetTimer {
            timer: TimerId::Progress { view: 7, height: 2 },
            after_ms: 1_000
        }),
        "{out:?}"
    );
}

#[test]
fn f_plus_one_view_changes_make_a_replica_join() {
    let c = Cluster::new(4);
    let mut r = c.replica(1);
    assert!(
        broadcasts(&r.handle(msg(Message::ViewChange(c.view_change(2, 3, None))))).is_empty(),
        "f = 1 is not enough"
    );
    let out = r.handle(msg(Message::ViewChange(c.view_change(3, 5, None))));
    // f+1 = 2 replicas want views ≥ 3: join the highest view both reach.
    assert!(
        matches!(broadcasts(&out)[..], [Message::ViewChange(vc)] if vc.view == 3),
        "{out:?}"
    );
    assert_persist_before_votes(&out);
    // Three replicas (r1, r2, r3) now ask for view 3 or later: 2f+1, so the timer runs.
    assert_eq!(
        r.mode(),
        Mode::ViewChanging {
            target: 3,
            timer_armed: true
        }
    );
    assert!(out.iter().any(|o| matches!(
        o,
        Output::SetTimer {
            timer: TimerId::ViewChange { view: 3 },
            ..
        }
    )));
}

#[test]
fn a_new_view_carries_the_prepared_block_forward() {
    let c = Cluster::new(4);
    let (x, y) = (b"prepared x".to_vec(), b"fresh y".to_vec());
    let hx = hash_of(&x).unwrap();
    // r0, r2 and r3 ask for view 1; r2 prepared x in view 0.
    let vcs = vec![
        c.view_change(0, 1, None),
        c.view_change(2, 1, Some(c.prepared(&[0, 2, 3], 1, 0, &x))),
        c.view_change(3, 1, None),
    ];
    // A backup (r2) accepts only x at height 1 in view 1.
    let mut r = c.replica(2);
    let out = r.handle(msg(c.new_view(1, vcs.clone())));
    assert_eq!(r.mode(), Mode::Normal { view: 1 });
    assert!(
        matches!(out.first(), Some(Output::Persist(s)) if s.view_start.as_ref().is_some_and(|v| v.mandate.as_ref().is_some_and(|(h, _)| *h == hx)))
    );
    assert_eq!(
        validation_requests(&r.handle(msg(c.pre_prepare(1, 1, 1, &y)))),
        0,
        "y is not the mandate"
    );
    assert_eq!(
        validation_requests(&r.handle(msg(c.pre_prepare(1, 1, 1, &x)))),
        1
    );
    // The new primary (r1) collects the view changes, joins, announces the new view
    // and re-proposes x itself, without asking the host.
    let mut p = c.replica(1);
    let mut out = Vec::new();
    for vc in vcs {
        out.extend(p.handle(msg(Message::ViewChange(vc))));
    }
    assert!(
        broadcasts(&out)
            .iter()
            .any(|m| matches!(m, Message::NewView(nv) if nv.view == 1))
    );
    assert!(!out.iter().any(|o| matches!(o, Output::NeedProposal { .. })));
    assert!(
        broadcasts(&out)
            .iter()
            .any(|m| matches!(m, Message::PrePrepare(pp) if pp.block_hash == hx && pp.view == 1))
    );
    assert_persist_before_votes(&out);
}

#[test]
fn a_new_view_with_a_forged_prepared_certificate_is_rejected() {
    let c = Cluster::new(4);
    let x = b"x".to_vec();
    let mut forged = c.prepared(&[0, 2, 3], 1, 0, &x);
    forged.prepares[2] = forged.prepares[1]; // a repeated signer
    let vcs = vec![
        c.view_change(0, 1, None),
        c.view_change(2, 1, Some(forged)),
        c.view_change(3, 1, None),
    ];
    let mut r = c.replica(2);
    let (faults, rest) = split_faults(r.handle(msg(c.new_view(1, vcs))));
    assert!(rest.is_empty(), "{rest:?}");
    assert_eq!(faults, [(ReplicaId(1), "invalid_new_view")]);
    assert_eq!(r.mode(), Mode::Normal { view: 0 });
}

#[test]
fn fetched_blocks_need_a_valid_certificate() {
    let c = Cluster::new(4);
    let blocks: Vec<Vec<u8>> = (1..=3u8).map(|i| vec![i; 10]).collect();
    let fetched = |signers: &[u32], i: usize| FetchedBlock {
        block: blocks[i].clone(),
        block_hash: hash_of(&blocks[i]).unwrap(),
        certificate: c.certificate(signers, i as u64 + 1, 0, hash_of(&blocks[i]).unwrap()),
    };
    // (case, batch, committed height after, the server's fault)
    let mut wrong_bytes = fetched(&[0, 1, 2], 0);
    wrong_bytes.block = b"not it".to_vec();
    let cases: Vec<(&str, Vec<FetchedBlock>, u64, Option<&str>)> = vec![
        (
            "quorum",
            vec![fetched(&[0, 2, 3], 0), fetched(&[1, 2, 3], 1)],
            2,
            None,
        ),
        (
            "too few signers",
            vec![fetched(&[0, 2], 0)],
            0,
            Some("invalid_certificate"),
        ),
        (
            "repeated signer",
            vec![fetched(&[0, 0, 2], 0)],
            0,
            Some("invalid_certificate"),
        ),
        (
            "block does not match",
            vec![wrong_bytes],
            0,
            Some("block_mismatch"),
        ),
        (
            "gap",
            vec![fetched(&[0, 2, 3], 1)],
            0,
            Some("fetched_out_of_order"),
        ),
        (
            "stops at the first bad one",
            vec![
                fetched(&[0, 2, 3], 0),
                fetched(&[2], 1),
                fetched(&[0, 2, 3], 2),
            ],
            1,
            Some("invalid_certificate"),
        ),
    ];
    for (name, blocks, height, fault) in cases {
        let mut r = c.replica(1);
        let peer = ReplicaId(3);
        let (faults, _) = split_faults(r.handle(Input::FetchedBlocks { peer, blocks }));
        assert_eq!(r.committed_height(), height, "{name}");
        let expected: Vec<(ReplicaId, &str)> = fault.map(|f| (peer, f)).into_iter().collect();
        assert_eq!(faults, expected, "{name}");
    }
}

#[test]
fn an_uncommitted_transaction_triggers_a_view_change() {
    let c = Cluster::new(4);
    let tx = [7u8; 32];
    // (committed before the check, view change expected)
    for (committed, expect_view_change) in [(false, true), (true, false)] {
        let mut r = c.replica(1);
        r.handle(Input::TxsSeen(vec![tx]));
        assert!(
            broadcasts(&r.handle(Input::TimerFired(TimerId::Censorship))).is_empty(),
            "one tick is not a timeout"
        );
        if committed {
            r.handle(Input::TxsCommitted(vec![tx]));
        }
        let out = r.handle(Input::TimerFired(TimerId::Censorship));
        let vc = broadcasts(&out)
            .iter()
            .any(|m| matches!(m, Message::ViewChange(vc) if vc.view == 1));
        assert_eq!(vc, expect_view_change, "committed: {committed}");
    }
}

#[test]
fn restore_checks_the_chain_head() {
    let c = Cluster::new(4);
    let head = ChainHead {
        height: 3,
        certificate: None,
    };
    assert!(Replica::restore(c.config(0), Default::default(), head).is_err());
    let h = [3; 32];
    let head = ChainHead {
        height: 3,
        certificate: Some(c.certificate(&[0, 1], 3, 0, h)),
    };
    assert!(Replica::restore(c.config(0), Default::default(), head).is_err());
    let head = ChainHead {
        height: 3,
        certificate: Some(c.certificate(&[0, 1, 2], 3, 0, h)),
    };
    let r = Replica::restore(c.config(0), Default::default(), head).unwrap();
    assert_eq!(r.committed_height(), 3);
    let mut wrong_key = c.config(0);
    wrong_key.key = c.keys[1].clone();
    assert!(Replica::new(wrong_key, ChainHead::genesis(), 0).is_err());
}

#[test]
fn a_lagging_peer_gets_our_status_and_a_stale_view_gets_our_new_view() {
    let c = Cluster::new(4);
    let mut r = c.replica(1);
    let block = b"b1".to_vec();
    let h = hash_of(&block).unwrap();
    r.handle(Input::FetchedBlocks {
        peer: ReplicaId(0),
        blocks: vec![FetchedBlock {
            block,
            block_hash: h,
            certificate: c.certificate(&[0, 2, 3], 1, 0, h),
        }],
    });
    let out = r.handle(msg(c.prepare(3, 0, 1, h)));
    assert!(
        matches!(&out[..], [Output::Send { to: ReplicaId(3), message: Message::Status(s) }] if s.certificate.height == 1)
    );
    // Rate limited until the next retransmit tick.
    assert!(r.handle(msg(c.commit(3, 0, 1, h))).is_empty());
}
