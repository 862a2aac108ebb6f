//! Crash test with real processes: sessions run through `tollgate run --db`,
//! killed with SIGKILL at random points (after a random number of durable
//! steps) and started again until each completes. At the end nothing is lost
//! or doubled: every call has exactly one recorded decision, every result
//! counts once, the decisions equal those of an uninterrupted run, each
//! session's checkpoint equals the replay of its journal, and
//! `tollgate audit verify` passes.

#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // tests fail by panicking

use crate::common::{Lcg, command};
use serde_json::Value as Json;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Stdio;

const WORKFLOW: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/support-refunds.toml");
const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tollgate-protocol/tests/scripts/refunds_story.jsonl");

/// Runs the script in `session`; kills the process after `kill_after` lines
/// of output (each line is a step already committed; 0: as soon as it has
/// started). Returns the lines and whether the run completed.
fn run(db: &Path, session: &str, kill_after: Option<usize>) -> (Vec<Json>, bool) {
    let mut child = command()
        .args(["run", "--workflow", WORKFLOW, "--db"])
        .arg(db)
        .args(["--session", session, SCRIPT])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = Vec::new();
    if kill_after == Some(0) {
        // At once: wherever the process is (opening or migrating the
        // store, deciding its first call, committing it).
        child.kill().unwrap();
    }
    for line in BufReader::new(stdout).lines() {
        let Ok(line) = line else { break };
        lines.push(serde_json::from_str::<Json>(&line).unwrap());
        if Some(lines.len()) == kill_after {
            child.kill().unwrap(); // SIGKILL
            break;
        }
    }
    let status = child.wait().unwrap();
    (lines, status.success())
}

/// Per call: the decision as an uninterrupted run gives it.
fn decisions(lines: &[Json]) -> BTreeMap<String, Json> {
    lines.iter().filter_map(|l| Some((l.get("call")?.as_str()?.to_owned(), l["decision"].clone()))).collect()
}

#[test]
fn sessions_killed_at_random_points_resume_without_losing_or_doubling_anything() {
    let dir = tollgate_store::testing::temp_dir("tollgate_crash").unwrap();
    let reference_db: PathBuf = dir.join("reference.db");
    let (reference, completed) = run(&reference_db, "s0", None);
    assert!(completed);
    let steps = reference.len() as u64;

    let db = dir.join("crash.db");
    let mut rng = Lcg::from_env();
    let sessions = 6;
    let mut kills = 0;
    for n in 0..sessions {
        let session = format!("s{n}");
        // What an uninterrupted run decides in a session of this name.
        let (reference, _) = if n == 0 { (reference.clone(), true) } else { run(&reference_db, &session, None) };
        let expected = decisions(&reference);
        let mut final_lines = None;
        for _attempt in 0..40 {
            // Kill in most runs, at any step; let some run to the end.
            let kill_after = (rng.below(4) != 0).then(|| rng.below(steps + 1) as usize);
            let (lines, completed) = run(&db, &session, kill_after);
            if completed && kill_after.is_none_or(|k| k > lines.len()) {
                final_lines = Some(lines);
                break;
            }
            kills += 1;
        }
        let lines = final_lines.unwrap_or_else(|| panic!("session {session} never completed"));
        assert_eq!(decisions(&lines), expected, "session {session}: decisions differ from an uninterrupted run");
    }
    eprintln!("{kills} runs killed with SIGKILL across {sessions} sessions");
    assert!(kills >= sessions, "the test must actually kill runs (killed {kills})");

    // The store, read back with the library.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let engine = tollgate_engine::Engine::open(&db.display().to_string()).await.unwrap();
        for n in 0..sessions {
            let session = format!("s{n}");
            let journal = engine.journal(&session).await.unwrap();
            let mut seen: BTreeMap<(String, String), usize> = BTreeMap::new();
            for entry in &journal {
                let key = (entry.record.kind().to_string(), entry.record.index_key().unwrap_or_default());
                *seen.entry(key).or_default() += 1;
            }
            for ((kind, call), count) in &seen {
                assert_eq!(*count, 1, "session {session}: {kind} of call {call} recorded {count} times");
            }
            assert_eq!(seen.keys().filter(|(k, _)| k == "decision").count(), decisions(&reference).len());
            let (_, cached) = engine.state(&session).await.unwrap();
            let (_, replayed) = engine.replay(&session).await.unwrap();
            assert_eq!(cached, replayed, "session {session}: checkpoint differs from the journal's replay");
        }
    });

    let verify = command().args(["audit", "verify", "--db"]).arg(&db).output().unwrap();
    let text = String::from_utf8_lossy(&verify.stdout);
    assert!(verify.status.success(), "{text}");
    assert!(text.contains("audit log intact"), "{text}");
    std::fs::remove_dir_all(&dir).ok();
}
