//! Crash during fan-out, with real processes: `tollgate demo --scenario
//! multi-concern --db --session` is killed with SIGKILL while its three
//! investigations run (after a seeded number of committed steps, read from
//! its `--progress` lines, plus a seeded delay that lands the kill inside a
//! tool call or between a side effect and its recorded result) and started
//! again with the same store and session until it completes. At the end:
//! the join is complete and correct (every concern has a finding, the
//! escalated one in the joined handoff, joined once), no side effect ran
//! twice (the backend's ledger, per idempotency key), nothing is in doubt,
//! every call was decided and every result recorded once with the decisions
//! of an uninterrupted run, each session's checkpoint equals the replay of
//! its journal, and `tollgate audit verify` passes.
//!
//! `TOLLGATE_CRASH_SEED` changes the kill points (as in `crash.rs`).

#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // tests fail by panicking

use crate::common::{JOINED_CASE_LINES, Lcg, command};
use serde_json::Value as Json;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

/// Simulated tool latency for the test runs (the demo's default is 50 ms).
const LATENCY_MS: u64 = 10;

/// Cases (parent sessions) are run to completion through kills, one after
/// another, until this many kills landed while investigations ran.
const FANOUT_KILLS_MIN: usize = 12;

/// Cases run at least and at most.
const CASES_MIN: usize = 2;
const CASES_MAX: usize = 12;

const CONCERNS: [&str; 3] = ["refund", "address", "charge"];

/// Where to kill a run: after this many `step` lines, this long after the last.
#[derive(Clone, Copy)]
struct Kill {
    after_steps: usize,
    delay: Duration,
}

/// How a run ended.
struct Run {
    lines: Vec<String>,
    completed: bool,
    /// The last step read before the kill was an investigation's.
    killed_in_fanout: bool,
}

fn run(db: &Path, session: &str, kill: Option<Kill>) -> Run {
    let latency = LATENCY_MS.to_string();
    let mut child = command()
        .args(["demo", "--scenario", "multi-concern", "--color", "never", "--progress", "--latency-ms", &latency])
        .arg("--db")
        .arg(db)
        .args(["--session", session])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = Vec::new();
    let mut steps = 0;
    let mut killed_in_fanout = false;
    let mut reader = BufReader::new(stdout).lines();
    for line in reader.by_ref() {
        let Ok(line) = line else { break };
        let step = line.strip_prefix("step ").map(|rest| rest.split(' ').next().unwrap_or_default().to_owned());
        lines.push(line);
        let Some(step_session) = step else { continue };
        steps += 1;
        if let Some(kill) = kill.filter(|k| k.after_steps == steps) {
            // The delay is the fault injection, not synchronisation: the
            // point was reached when its line was read.
            std::thread::sleep(kill.delay);
            child.kill().unwrap(); // SIGKILL
            killed_in_fanout = step_session.contains(':');
            break;
        }
    }
    let status = child.wait().unwrap();
    if status.success() {
        // The run finished before the kill arrived: the rest of its output.
        lines.extend(reader.map_while(Result::ok));
    }
    // A kill that came after the run finished is no kill.
    Run { lines, completed: status.success(), killed_in_fanout: killed_in_fanout && !status.success() }
}

/// Runs `session` in `db` until it completes: every run is to be killed
/// after 1 to 3 new steps; the one planned to die after more steps than
/// remained completes.
fn run_through_kills(db: &Path, session: &str, rng: &mut Lcg, kills: &mut usize, in_fanout: &mut usize) -> Vec<String> {
    for _attempt in 0..60 {
        let kill = Some(Kill {
            after_steps: 1 + rng.below(3) as usize,
            delay: Duration::from_millis(rng.below(LATENCY_MS + 5)),
        });
        let run = run(db, session, kill);
        if run.completed {
            return run.lines;
        }
        *kills += 1;
        if run.killed_in_fanout {
            *in_fanout += 1;
        }
    }
    panic!("session {session} never completed");
}

/// The journal entries of `session`, as (kind, call id, body).
async fn journal(engine: &tollgate_engine::Engine, session: &str) -> Vec<(String, Option<String>, Json)> {
    let entries = engine.journal(session).await.unwrap();
    entries
        .into_iter()
        .map(|e| (e.record.kind().to_string(), e.record.index_key(), serde_json::from_str(&e.record.body()).unwrap()))
        .collect()
}

/// Per call id of `session`: the recorded verdict.
async fn verdicts(engine: &tollgate_engine::Engine, session: &str) -> BTreeMap<String, Json> {
    journal(engine, session)
        .await
        .into_iter()
        .filter(|(kind, _, _)| kind == "decision")
        .map(|(_, call, body)| (call.unwrap(), body["decision"]["verdict"].clone()))
        .collect()
}

/// The backend's ledger: per idempotency key, executions and repeats answered from the ledger.
fn ledger(db: &Path) -> BTreeMap<String, (usize, usize)> {
    let path = PathBuf::from(format!("{}.side-effects.jsonl", db.display()));
    let mut seen: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for line in std::fs::read_to_string(path).unwrap().lines() {
        let Ok(line) = serde_json::from_str::<Json>(line) else { continue };
        let counts = seen.entry(line["key"].as_str().unwrap().to_owned()).or_default();
        if line.get("result").is_some() {
            counts.0 += 1;
        } else {
            counts.1 += 1;
        }
    }
    seen
}

#[test]
fn the_multi_concern_demo_killed_while_its_investigations_run_resumes_to_one_complete_join() {
    let dir = tollgate_store::testing::temp_dir("tollgate_fanout_crash").unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();

    // An uninterrupted run: the decisions every case must end with.
    let reference_db = dir.join("reference.db");
    assert!(run(&reference_db, "case0", None).completed);
    let reference_engine =
        runtime.block_on(tollgate_engine::Engine::open(&reference_db.display().to_string())).unwrap();
    let mut expected = BTreeMap::new();
    for suffix in std::iter::once(String::new()).chain(CONCERNS.iter().map(|c| format!(":{c}"))) {
        expected.insert(suffix.clone(), runtime.block_on(verdicts(&reference_engine, &format!("case0{suffix}"))));
    }
    runtime.block_on(reference_engine.close());

    let db = dir.join("fanout.db");
    let mut rng = Lcg::from_env();
    let (mut kills, mut in_fanout) = (0, 0);
    let mut outputs = Vec::new();
    while outputs.len() < CASES_MIN || (in_fanout < FANOUT_KILLS_MIN && outputs.len() < CASES_MAX) {
        let session = format!("case{}", outputs.len());
        outputs.push(run_through_kills(&db, &session, &mut rng, &mut kills, &mut in_fanout));
    }
    let cases = outputs.len();
    let ledger = ledger(&db);
    let repeats: usize = ledger.values().map(|(_, repeats)| repeats).sum();
    eprintln!(
        "{kills} runs killed with SIGKILL across {cases} cases ({in_fanout} while investigations ran); \
         {repeats} side effects re-driven after a restart and answered from the ledger"
    );
    assert!(in_fanout >= FANOUT_KILLS_MIN, "too few kills while investigations ran ({in_fanout} of {kills})");

    // The last run's output shows the whole join.
    for (n, lines) in outputs.iter().enumerate() {
        let text = lines.join("\n");
        for expected in JOINED_CASE_LINES {
            assert!(text.contains(expected), "case{n}: missing {expected:?} in:\n{text}");
        }
        assert!(lines.last().unwrap().starts_with("parallel wall time: "), "case{n}:\n{text}");
    }

    let engine = runtime.block_on(tollgate_engine::Engine::open(&db.display().to_string())).unwrap();
    runtime.block_on(async {
        let mut side_effects = Vec::new();
        for n in 0..cases {
            let parent = format!("case{n}");
            let sessions: Vec<(String, String)> = std::iter::once(String::new())
                .chain(CONCERNS.iter().map(|c| format!(":{c}")))
                .map(|suffix| (format!("{parent}{suffix}"), suffix))
                .collect();
            for (session, suffix) in &sessions {
                let entries = journal(&engine, session).await;
                let mut seen: BTreeMap<(String, String), usize> = BTreeMap::new();
                for (kind, call, body) in &entries {
                    *seen.entry((kind.clone(), call.clone().unwrap_or_default())).or_default() += 1;
                    if let Some(key) = body.pointer("/decision/idempotency_key").and_then(Json::as_str) {
                        side_effects.push(key.to_owned());
                    }
                }
                for ((kind, call), count) in &seen {
                    assert_eq!(*count, 1, "{session}: {kind} {call} recorded {count} times");
                }
                assert_eq!(verdicts(&engine, session).await, expected[suffix], "{session}: decisions differ");
                let resume = engine.resume(session).await.unwrap();
                assert!(resume.in_doubt.is_empty(), "{session}: still in doubt: {:?}", resume.in_doubt);
                let (_, cached) = engine.state(session).await.unwrap();
                let (_, replayed) = engine.replay(session).await.unwrap();
                assert_eq!(cached, replayed, "{session}: checkpoint differs from the journal's replay");
            }

            // Opened once, each child ended once (the escalated one by its call), joined once.
            let entries = journal(&engine, &parent).await;
            let count = |kind: &str| entries.iter().filter(|(k, _, _)| k == kind).count();
            assert_eq!((count("investigations"), count("joined")), (1, 1), "{parent}: opened or joined twice");
            for concern in CONCERNS {
                let child = journal(&engine, &format!("{parent}:{concern}")).await;
                let concluded = child.iter().filter(|(k, _, _)| k == "concluded").count();
                assert_eq!(
                    concluded,
                    usize::from(concern != "charge"),
                    "{parent}:{concern} concluded {concluded} times"
                );
            }
            let join = &entries.iter().find(|(k, _, _)| k == "joined").unwrap().2;
            let findings: Vec<(&str, &str)> = join["findings"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| (f["concern_id"].as_str().unwrap(), f["status"].as_str().unwrap()))
                .collect();
            assert_eq!(findings, [("refund", "resolved"), ("address", "resolved"), ("charge", "escalated")]);
            let handoff = &join["handoff"];
            assert_eq!(handoff["customer_id"], "c_42");
            let in_handoff: Vec<&str> =
                handoff["concerns"].as_array().unwrap().iter().map(|f| f["concern_id"].as_str().unwrap()).collect();
            assert_eq!(in_handoff, CONCERNS, "{parent}: the joined handoff lacks a concern");
        }

        // Every allowed side effect ran exactly once, under its key.
        side_effects.sort();
        let executed: Vec<String> = ledger.keys().cloned().collect();
        assert_eq!(executed, side_effects, "the backend ran other side effects than were allowed");
        for (key, (executions, _)) in &ledger {
            assert_eq!(*executions, 1, "side effect {key} ran {executions} times");
        }
        assert_eq!(side_effects.len(), 2 * cases, "a refund and an address change per case");
        engine.close().await;
    });

    let verify = command().args(["audit", "verify", "--db"]).arg(&db).output().unwrap();
    let text = String::from_utf8_lossy(&verify.stdout);
    assert!(verify.status.success(), "{text}");
    assert!(text.contains("audit log intact"), "{text}");
    std::fs::remove_dir_all(&dir).ok();
}
