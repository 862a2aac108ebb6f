//! The OpenAPI document against the server it describes, by Schemathesis
//! (installed by `.ci/python` into `.ci/venv`): once per role, no 5xx
//! and no response outside the document (status, content type, schema).
//! Outside CI, without Schemathesis, it says so and passes; under
//! `CI=true` its absence is a failure.

use crate::common::REFERENCE;
use crate::socket::send;
use axum::http::StatusCode;
use serde_json::json;
use std::path::PathBuf;
use std::process::Command;
use tollgate_engine::{Engine, Role};
use tollgate_server::{Bound, Config, Limits, WorkflowSource};

fn schemathesis() -> Option<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let binary = root.join(".ci/venv/bin/schemathesis");
    if binary.exists() {
        return Some(binary);
    }
    let under_ci = std::env::var("CI").is_ok_and(|v| v == "true");
    assert!(!under_ci, "Schemathesis is missing under CI=true: .ci/python installs it");
    eprintln!("skipping the Schemathesis test: run .ci/python to install it into .ci/venv");
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_5xx_and_no_response_outside_the_document_for_any_role() {
    let Some(binary) = schemathesis() else { return };
    let db = tollgate_store::testing::sqlite_url().unwrap();
    let engine = Engine::open(&db).await.unwrap();
    let mut tokens = Vec::new();
    for (role, name) in [(Role::Agent, "bot"), (Role::Reviewer, "Ann"), (Role::Admin, "ops")] {
        tokens.push((role, engine.create_token("acme", role, name).await.unwrap().1));
    }
    engine.close().await;
    let workflows = vec![WorkflowSource { path: "support-refunds.toml".into(), text: REFERENCE.to_owned() }];
    let mut config = Config::new(workflows, db, "127.0.0.1:0".parse().unwrap());
    config.limits = Limits { rate_per_second: 0.0, wait_seconds_max: 1, request_seconds_max: 10, ..Limits::default() };
    let bound = Bound::bind(config).await.unwrap();
    let addr = bound.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(bound.run(async move {
        let _ = stopped.await;
    }));
    let create = json!({"id": "s1", "workflow": "support-refunds"});
    assert_eq!(send(addr, "POST", "/v1/sessions", Some(&tokens[0].1), Some(create)).await.0, StatusCode::CREATED);

    let workdir = std::env::temp_dir().join(format!("tollgate-schemathesis-{}", std::process::id()));
    std::fs::create_dir_all(&workdir).unwrap();
    for (role, token) in tokens {
        let (binary, workdir) = (binary.clone(), workdir.clone());
        let output = tokio::task::spawn_blocking(move || {
            Command::new(binary)
                .current_dir(workdir)
                .args(["run", &format!("http://{addr}/openapi.json")])
                .args(["--header", &format!("Authorization: Bearer {token}")])
                .args([
                    "--checks",
                    "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
                ])
                .args(["--workers", "1", "--max-examples", "15", "--seed", "1", "--request-timeout", "15"])
                .args(["--phases", "examples,coverage,fuzzing", "--no-color", "--generation-database", ":memory:"])
                .output()
                .unwrap()
        })
        .await
        .unwrap();
        let text = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "Schemathesis as {role}:\n{text}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let _ = std::fs::remove_dir_all(&workdir);
    stop.send(()).unwrap();
    running.await.unwrap().unwrap();
}
