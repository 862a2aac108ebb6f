//! The recorded τ-bench traces (`../shared/tau/traces/`, beside the
//! repository) read as the trace module reads them: every session, call,
//! user action, clock and expectation. Absent, the test says it skips;
//! under `CI=true` that is a failure.

use std::path::{Path, PathBuf};
use tollgate_core::trace::{self, Format, TraceEvent};

fn tau_traces() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/tau/traces");
    if dir.is_dir() {
        return Some(dir);
    }
    assert!(std::env::var("CI").as_deref() != Ok("true"), "{} is missing under CI=true", dir.display());
    eprintln!("skipping: {} is not there", dir.display());
    None
}

#[test]
fn every_recorded_trace_reads_with_its_calls_clock_and_expectations() {
    let Some(dir) = tau_traces() else { return };
    let workflow =
        tollgate_core::compile(include_str!("../../../../examples/support-refunds.toml"), "support-refunds.toml")
            .unwrap_or_else(|p| panic!("{p:?}"));
    // (file, sessions, agent calls, user actions, sessions with expected blocks)
    let files = [
        ("gt_completed_tau2.jsonl", 298, 1247, 413, 0),
        ("gt_completed_tau_v1.jsonl", 165, 983, 0, 13),
        ("violations_public.jsonl", 18, 43, 0, 18),
        ("gpt4o_airline.jsonl", 200, 1164, 0, 0),
    ];
    for (file, sessions, calls, user_actions, with_blocks) in files {
        let text = std::fs::read_to_string(dir.join(file)).unwrap();
        let traces = trace::parse(&text, file).unwrap_or_else(|e| panic!("{file}: {e}"));
        let count = |user: bool| -> usize {
            traces.iter().flat_map(|t| &t.events).filter(|e| matches!(e, TraceEvent::UserAction(_)) == user).count()
        };
        assert_eq!((traces.len(), count(false), count(true)), (sessions, calls, user_actions), "{file}");
        assert!(traces.iter().all(|t| t.format == Format::Tau), "{file}");
        // The policies fix the clock for airline and telecom; retail needs none.
        for t in &traces {
            assert_eq!(t.now.is_some(), t.domain.as_deref() != Some("retail"), "{file}: {}", t.id);
        }
        let blocked: Vec<_> =
            traces.iter().filter(|t| t.expect.as_ref().is_some_and(|e| !e.blocked_indexes.is_empty())).collect();
        assert_eq!(blocked.len(), with_blocks, "{file}");
        for t in blocked {
            for &index in &t.expect.as_ref().unwrap().blocked_indexes {
                assert!(matches!(t.events.get(index), Some(TraceEvent::Call(_))), "{file}: {} index {index}", t.id);
            }
        }
        // The pure replay decides every agent call once, and only those.
        let decided: usize = traces.iter().map(|t| trace::replay(&workflow, t).len()).sum();
        assert_eq!(decided, calls, "{file}");
    }
}
