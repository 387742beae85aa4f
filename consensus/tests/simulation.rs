//! The deterministic simulation, run over many seeds per scenario.
//!
//! `TRACECHAIN_SIM_SEEDS` sets the seeds per scenario (default 50, so 600 in all),
//! `TRACECHAIN_SIM_SEED_BASE` the first seed (default 0). A failing seed prints a
//! one-line replay command, which runs the `replay` test below with
//! `TRACECHAIN_SIM_SCENARIO` and `TRACECHAIN_SIM_SEED` (add `TRACECHAIN_SIM_TRACE=1`
//! for a trace of commits, crashes and restarts).

mod sim;

use std::time::Instant;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Runs a scenario's seeds; returns the peer faults reported over all of them.
/// What a scenario's seeds did together.
#[derive(Debug, Default)]
struct Totals {
    faults: u64,
    reproposed: u64,
}

fn run_scenario(name: &str) -> Totals {
    let scenario = sim::scenario(name).expect("known scenario");
    let seeds = env_u64("TRACECHAIN_SIM_SEEDS", 50);
    let base = env_u64("TRACECHAIN_SIM_SEED_BASE", 0);
    let started = Instant::now();
    let mut failures = Vec::new();
    let (mut heights, mut max_view) = (0u64, 0u64);
    let mut totals = Totals::default();
    for seed in base..base + seeds {
        match sim::run_seed(&scenario, seed) {
            Ok(stats) => {
                heights += stats.height;
                max_view = max_view.max(stats.max_view);
                totals.faults += stats.faults_reported;
                totals.reproposed += stats.reproposed;
            }
            Err(line) => {
                eprintln!("{line}");
                failures.push(seed);
            }
        }
    }
    eprintln!(
        "scenario {name}: {seeds} seeds from {base} in {:.1} s, {heights} blocks committed, highest view {max_view}, {} re-proposed in a later view, {} peer faults reported, {} failed",
        started.elapsed().as_secs_f64(),
        totals.reproposed,
        totals.faults,
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "scenario {name}: failing seeds {failures:?} (replay commands above)"
    );
    totals
}

#[test]
fn normal() {
    run_scenario("normal");
}

#[test]
fn lossy() {
    run_scenario("lossy");
}

#[test]
fn partition() {
    run_scenario("partition");
}

#[test]
fn crash_restart() {
    run_scenario("crash_restart");
}

#[test]
fn equivocation() {
    run_scenario("equivocation");
}

#[test]
fn double_votes() {
    // A second signed vote for another block is caught and reported as equivocation.
    assert!(
        run_scenario("double_votes").faults > 0,
        "no double vote was reported"
    );
}

#[test]
fn hostile_input() {
    // Every run has a Noise replica whose forgeries are reported (and never a
    // correct replica: the harness checks that on every report).
    assert!(
        run_scenario("hostile_input").faults > 0,
        "no hostile input was reported"
    );
}

#[test]
fn silent() {
    run_scenario("silent");
}

#[test]
fn invalid_proposals() {
    run_scenario("invalid_proposals");
}

#[test]
fn censorship() {
    run_scenario("censorship");
}

/// View changes carry prepared blocks forward: across the seeds, blocks prepared in one
/// view are re-proposed unchanged and committed with a certificate of a later view (the
/// case the offline auditor must accept, docs/AUDIT.md), and every commit of every run
/// is checked never to carry a certificate of an earlier view than its block's.
#[test]
fn view_change() {
    let totals = run_scenario("view_change");
    assert!(
        totals.reproposed > 0,
        "no block was re-proposed in a later view"
    );
}

#[test]
fn chaos() {
    run_scenario("chaos");
}

/// Replays one seed exactly: the command a failing seed prints. Without a scenario in
/// the environment it replays chaos seed 1, so the replay path itself stays tested.
#[test]
fn replay() {
    let name = std::env::var("TRACECHAIN_SIM_SCENARIO").unwrap_or_else(|_| "chaos".into());
    let seed = env_u64("TRACECHAIN_SIM_SEED", 1);
    let scenario = sim::scenario(&name).expect("known scenario");
    match sim::run_seed(&scenario, seed) {
        Ok(stats) => eprintln!("scenario {name} seed {seed} passed: {stats:?}"),
        Err(line) => panic!("{line}"),
    }
}

/// Same seed, same run: two runs of one seed agree on everything they report.
#[test]
fn runs_are_deterministic() {
    let scenario = sim::scenario("chaos").expect("known scenario");
    for seed in [3, 17] {
        let a = sim::Sim::new(scenario.clone(), seed).run();
        let b = sim::Sim::new(scenario.clone(), seed).run();
        assert_eq!(format!("{a:?}"), format!("{b:?}"));
    }
}
