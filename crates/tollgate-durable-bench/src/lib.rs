//! What durability costs (`tollgate bench durable` prints it), against the machine's
//! own baselines measured in the same run (the machines are noisy; ratios
//! travel, absolute figures less).
//!
//! - raw fsync: 4 KiB write + `fdatasync` on a file beside the database;
//! - raw commit: one single-row INSERT committed the way the store commits
//!   (SQLite: `BEGIN IMMEDIATE`, WAL, `synchronous=FULL`, straight through
//!   SQLite's C interface with rusqlite, the cheapest commit from Rust),
//!   median; one is taken before every engine sample below, and each ratio
//!   is over the raw commits taken beside its own samples;
//! - engine step: one `Engine::decide` (lock, load checkpoint, decide,
//!   journal + audit + checkpoint, commit), median, and its ratio to the raw
//!   commit;
//! - three-step workflow: verify, look up, refund, each decided and its
//!   result recorded (six durable commits), per step, median over sessions;
//! - durable decisions per second from 64 and from 1,024 concurrent
//!   sessions, with the process's CPU time per decision; what the
//!   store alone commits for them (their rows, no engine); and (SQLite) the
//!   floor of any layout: 64 decisions' texts in one indexed table;
//! - resume of a session, median;
//! - audit verify, records per second, over a log of more than a million records.

use anyhow::{Context, Result};
use serde_json::{Value as Json, json};
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tollgate_core::{ToolCall, ToolOutcome};
use tollgate_engine::{Engine, WorkflowHandle};
use tollgate_store::{Location, NewAudit, NewSession, Store, StoredWorkflow};

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples.get(samples.len() / 2).copied().unwrap_or_default()
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn call(id: &str, tool: &str, args: Json) -> ToolCall {
    ToolCall::new(id, tool, args)
}

/// The three steps of the refund workflow, each decided and its result recorded.
async fn three_steps(engine: &Engine, session: &str, total: f64, refund: Option<f64>) -> Result<()> {
    engine.decide(session, &call("v", "get_customer", json!({"email": "a@example.com", "zip": "94107"}))).await?;
    let customer = json!({"verified": true, "customer_id": "c_42", "email": "a@example.com", "tier": "gold"});
    engine.record_result(session, "v", &customer, ToolOutcome::Succeeded).await?;
    engine.decide(session, &call("o", "lookup_order", json!({"order_id": "#W1"}))).await?;
    let order = json!({"order_id": "#W1", "customer_id": "c_42", "total": total, "status": "delivered"});
    engine.record_result(session, "o", &order, ToolOutcome::Succeeded).await?;
    if let Some(amount) = refund {
        engine.decide(session, &call("r", "process_refund", json!({"order_id": "#W1", "amount": amount}))).await?;
        engine.record_result(session, "r", &json!({"refund_id": "rf_1"}), ToolOutcome::Succeeded).await?;
    }
    Ok(())
}

/// The same three steps as an agent loop drives them: each tool's result
/// goes in with the next call (`Engine::record_and_decide`), one commit
/// between two tool calls instead of two.
async fn three_steps_looped(engine: &Engine, session: &str, total: f64, amount: f64) -> Result<()> {
    engine.decide(session, &call("v", "get_customer", json!({"email": "a@example.com", "zip": "94107"}))).await?;
    let customer = json!({"verified": true, "customer_id": "c_42", "email": "a@example.com", "tier": "gold"});
    let lookup = call("o", "lookup_order", json!({"order_id": "#W1"}));
    engine.record_and_decide(session, "v", &customer, ToolOutcome::Succeeded, &lookup).await?;
    let order = json!({"order_id": "#W1", "customer_id": "c_42", "total": total, "status": "delivered"});
    let refund = call("r", "process_refund", json!({"order_id": "#W1", "amount": amount}));
    let (_, decided) = engine.record_and_decide(session, "o", &order, ToolOutcome::Succeeded, &refund).await?;
    if decided.decision.verdict() != tollgate_core::Verdict::Allow {
        anyhow::bail!("the looped workflow's refund was not allowed: {:?}", decided.decision.reasons());
    }
    engine.record_result(session, "r", &json!({"refund_id": "rf_1"}), ToolOutcome::Succeeded).await?;
    Ok(())
}

/// The baseline: one single-row INSERT committed durably (SQLite: straight
/// through its C interface with rusqlite, the cheapest commit there is from
/// Rust, `BEGIN IMMEDIATE`, WAL, `synchronous=FULL` as the store's own
/// connections). One is taken before each engine sample, so both are
/// measured at the same moment of a noisy machine.
enum RawCommit {
    Sqlite(rusqlite::Connection, i64),
    Postgres(sqlx::PgPool, i64),
}

/// A connection of its own to the store's SQLite file, committing as the
/// store's do (WAL, `synchronous=FULL`).
fn open_beside(path: &std::path::Path) -> Result<rusqlite::Connection> {
    let db = rusqlite::Connection::open(path)?;
    db.pragma_update(None, "synchronous", "FULL")?;
    Ok(db)
}

impl RawCommit {
    async fn open(store: &Store) -> Result<RawCommit> {
        Ok(match store.location() {
            Location::Sqlite(path) => {
                let db = open_beside(path)?;
                db.execute_batch("DROP TABLE IF EXISTS bench_raw; CREATE TABLE bench_raw (n BIGINT, body TEXT)")?;
                RawCommit::Sqlite(db, 0)
            }
            Location::Postgres(url) => {
                let pool = sqlx::postgres::PgPoolOptions::new().max_connections(1).connect(url).await?;
                sqlx::query("CREATE TABLE IF NOT EXISTS bench_raw (n BIGINT, body TEXT)").execute(&pool).await?;
                RawCommit::Postgres(pool, 0)
            }
        })
    }

    /// One raw commit, timed. (SQLite: blocks this thread in place; the
    /// benchmark's runtime is multi-threaded.)
    async fn once(&mut self) -> Result<Duration> {
        match self {
            RawCommit::Sqlite(db, n) => {
                *n += 1;
                let n = *n;
                tokio::task::block_in_place(|| -> Result<Duration> {
                    let start = Instant::now();
                    db.execute_batch("BEGIN IMMEDIATE")?;
                    db.prepare_cached("INSERT INTO bench_raw VALUES (?1, 'x')")?.execute([n])?;
                    db.execute_batch("COMMIT")?;
                    Ok(start.elapsed())
                })
            }
            RawCommit::Postgres(pool, n) => {
                *n += 1;
                let start = Instant::now();
                let mut tx = pool.begin().await?;
                sqlx::query("INSERT INTO bench_raw VALUES ($1, 'x')").bind(*n).execute(&mut *tx).await?;
                tx.commit().await?;
                Ok(start.elapsed())
            }
        }
    }

    async fn finish(self) -> Result<()> {
        match self {
            RawCommit::Sqlite(db, _) => db.execute_batch("DROP TABLE bench_raw")?,
            RawCommit::Postgres(pool, _) => {
                sqlx::query("DROP TABLE bench_raw").execute(&pool).await?;
            }
        }
        Ok(())
    }
}

/// Raw commits and the engine samples taken between them.
struct Paired {
    raw: Vec<Duration>,
    engine: Vec<Duration>,
}

impl Paired {
    fn new() -> Paired {
        Paired { raw: Vec::new(), engine: Vec::new() }
    }

    fn engine_us(&self) -> f64 {
        us(median(self.engine.clone()))
    }

    /// The engine's median over the raw commits' median.
    fn ratio(&self) -> f64 {
        median(self.engine.clone()).as_secs_f64() / median(self.raw.clone()).as_secs_f64()
    }
}

/// 300 engine steps (one durable decision each, its result recorded apart
/// and not timed), each after one raw commit.
async fn steps(engine: &Engine, session: &str, prefix: &str, raw: &mut RawCommit) -> Result<Paired> {
    let mut paired = Paired::new();
    for n in 0..300 {
        paired.raw.push(raw.once().await?);
        let id = format!("{prefix}{n}");
        let refund = call(&id, "process_refund", json!({"order_id": "#W1", "amount": 1.0}));
        let start = Instant::now();
        engine.decide(session, &refund).await?;
        paired.engine.push(start.elapsed());
        engine.record_result(session, &id, &json!({"refund_id": n}), ToolOutcome::Succeeded).await?;
    }
    Ok(paired)
}

/// Where the benchmark writes: never into data that is there already. It
/// writes a million audit records, and an audit log cannot be cleaned up
/// after (removing records is what `audit verify` reports).
enum Target {
    /// A new SQLite file (the default one in a temporary directory, or one
    /// given that did not exist).
    Sqlite(String),
    /// A schema of its own on the PostgreSQL server given, dropped at the end.
    Postgres { server: String, schema: String, url: String },
}

impl Target {
    async fn new(url: Option<String>, dir: &std::path::Path) -> Result<Target> {
        let Some(url) = url else { return Ok(Target::Sqlite(dir.join("bench.db").display().to_string())) };
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            let path = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")).unwrap_or(&url);
            if std::path::Path::new(path).exists() {
                anyhow::bail!(
                    "{path} exists: the benchmark writes a million audit records, which cannot be removed from a \
                     store's audit log afterwards; give it a path that does not exist yet (or leave --db out)"
                );
            }
            return Ok(Target::Sqlite(url));
        }
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(&url).await.with_context(|| format!("cannot connect to {url}"))?;
        let millis = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis());
        let schema = format!("tollgate_bench_{}_{millis}", std::process::id());
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
            .execute(&mut conn)
            .await
            .with_context(|| format!("cannot create the benchmark's schema {schema} on {url}"))?;
        drop(conn.close().await);
        let separator = if url.contains('?') { '&' } else { '?' };
        let bench_url = format!("{url}{separator}options=-c%20search_path%3D{schema}");
        Ok(Target::Postgres { server: url, schema, url: bench_url })
    }

    fn url(&self) -> &str {
        match self {
            Target::Sqlite(url) | Target::Postgres { url, .. } => url,
        }
    }

    /// Drops the PostgreSQL schema (an SQLite file given stays, for a look).
    async fn clean_up(&self) -> Result<()> {
        if let Target::Postgres { server, schema, .. } = self {
            use sqlx::Connection;
            let mut conn = sqlx::PgConnection::connect(server).await?;
            sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA IF EXISTS {schema} CASCADE")))
                .execute(&mut conn)
                .await
                .with_context(|| format!("cannot drop the benchmark's schema {schema}"))?;
            drop(conn.close().await);
        }
        Ok(())
    }
}

/// Runs the benchmark on `url` (default: a new SQLite file in a temporary
/// directory; a PostgreSQL server: a new schema on it, dropped at the end)
/// and prints the figures, as text or as one JSON object.
/// Measures every figure on a new SQLite file (`url` `None`) or in a schema
/// of its own on the PostgreSQL server at `url` (dropped at the end), and
/// returns them as one JSON object (keys named with their units).
pub fn run(url: Option<String>) -> Result<Json> {
    let dir = std::env::temp_dir().join(format!("tollgate_bench_{}_{}", std::process::id(), now_ms()));
    std::fs::create_dir_all(&dir).context("cannot make a temporary directory")?;
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let target = runtime.block_on(Target::new(url, &dir))?;
    let url = target.url().to_owned();

    let mut file = std::fs::File::create(dir.join("fsync.bin"))?;
    let block = vec![7u8; 4096];
    let mut samples = Vec::new();
    for _ in 0..300 {
        let start = Instant::now();
        file.write_all(&block)?;
        file.sync_data()?;
        samples.push(start.elapsed());
    }
    let fsync = median(samples);

    // Session ids unique to this run, so a store can be measured again.
    let tag = format!(
        "bench{}-{}",
        std::process::id(),
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis())
    );
    let figures = runtime.block_on(async {
        let figures = measure(&url, &tag, fsync).await;
        // The figures stand even if the clean-up fails; it says what is left.
        if let Err(error) = target.clean_up().await {
            eprintln!("tollgate: warning: {error:#}");
        }
        figures
    });
    std::fs::remove_dir_all(&dir).ok();
    figures
}

/// Every figure, measured on the store at `url`.
async fn measure(url: &str, tag: &str, fsync: Duration) -> Result<Json> {
    let store = Store::open(url).await?;
    let engine = Engine::new(store.clone());
    let figures = measure_on(engine, &store, tag, fsync).await;
    // Closed however it went, so nothing holds the schema a clean-up drops.
    store.close().await;
    figures
}

async fn measure_on(engine: Engine, store: &Store, tag: &str, fsync: Duration) -> Result<Json> {
    let mut raw = RawCommit::open(store).await?;
    // This benchmark's runtime is multi-threaded: SQLite commits block in
    // place (a server's would too). One step figure is also taken without.
    engine.commit_in_place(true);
    let workflow = engine.register_workflow(tollgate_demo::SUPPORT_REFUNDS, "support-refunds.toml").await?;

    // One engine step.
    let step_session = format!("{tag}-step");
    engine.create_session(&workflow, &step_session, None).await?;
    three_steps(&engine, &step_session, 1e9, None).await?;
    let step = steps(&engine, &step_session, "r", &mut raw).await?;
    engine.commit_in_place(false);
    let step_pool = steps(&engine, &step_session, "p", &mut raw).await?;
    engine.commit_in_place(true);

    // The three-step workflow, one session each, decide and result apart,
    // then as an agent loop; a raw commit before each run, per step.
    let mut per_step = Paired::new();
    let mut looped = Paired::new();
    for n in 0..100 {
        let session = format!("{tag}-w{n}");
        engine.create_session(&workflow, &session, None).await?;
        per_step.raw.push(raw.once().await?);
        let start = Instant::now();
        three_steps(&engine, &session, 300.0, Some(25.0)).await?;
        per_step.engine.push(start.elapsed() / 3);
        let session = format!("{tag}-l{n}");
        engine.create_session(&workflow, &session, None).await?;
        looped.raw.push(raw.once().await?);
        let start = Instant::now();
        three_steps_looped(&engine, &session, 300.0, 25.0).await?;
        looped.engine.push(start.elapsed() / 3);
    }
    let raw_all: Vec<Duration> =
        [&step.raw, &step_pool.raw, &per_step.raw, &looped.raw].into_iter().flatten().copied().collect();
    raw.finish().await?;

    let (engine, concurrent) = concurrent_decisions(Arc::new(engine), &workflow, tag, 64).await?;
    let (engine, many) = concurrent_decisions(engine, &workflow, tag, 1024).await?;
    let (floor, template) = store_floor(&engine, store, &workflow, tag).await?;
    let disk_floor = disk_floor(store, tag, template).await?;

    let mut samples = Vec::new();
    for n in 0..200 {
        let start = Instant::now();
        engine.resume(&format!("{tag}-w{}", n % 100)).await?;
        samples.push(start.elapsed());
    }
    let resume = median(samples);

    let (records, verify) = audit_verify(store, tag).await?;
    engine.close().await;
    Ok(json!({
        "store": engine.backend(),
        "raw_fsync_us": us(fsync),
        "raw_commit_us": us(median(raw_all)),
        "engine_step_us": step.engine_us(),
        "engine_step_over_raw_commit": step.ratio(),
        "engine_step_commit_on_blocking_pool_us": step_pool.engine_us(),
        "engine_step_commit_on_blocking_pool_over_raw_commit": step_pool.ratio(),
        "three_step_workflow_per_step_us": per_step.engine_us(),
        "three_step_per_step_over_raw_commit": per_step.ratio(),
        "three_step_looped_per_step_us": looped.engine_us(),
        "three_step_looped_per_step_over_raw_commit": looped.ratio(),
        "decisions_per_second_64_sessions": concurrent.rate,
        "decisions_per_group_commit_64_sessions": concurrent.group_mean,
        "cpu_us_per_decision_64_sessions": concurrent.cpu_us_per_decision,
        "decisions_per_second_1024_sessions": many.rate,
        "decisions_per_group_commit_1024_sessions": many.group_mean,
        "cpu_us_per_decision_1024_sessions": many.cpu_us_per_decision,
        "cores": std::thread::available_parallelism().map_or(1, usize::from),
        "store_only_decisions_per_second_64_sessions": floor,
        "one_indexed_table_decisions_per_second_64_sessions": disk_floor,
        "resume_us": us(resume),
        "audit_verify_records": records,
        "audit_verify_records_per_second": records as f64 / verify.as_secs_f64(),
    }))
}

/// Durable decisions per second from `sessions` sessions deciding at once:
/// the rate, the mean decisions per group commit, and the process's CPU
/// time per decision (user + system, from `/proc/self/stat`; NaN where
/// that cannot be read), which bounds the rate at cores / CPU per decision.
async fn concurrent_decisions(
    engine: Arc<Engine>,
    workflow: &WorkflowHandle,
    tag: &str,
    sessions: u32,
) -> Result<(Arc<Engine>, Concurrent)> {
    for n in 0..sessions {
        let session = format!("{tag}-c{sessions}-{n}");
        engine.create_session(workflow, &session, None).await?;
        three_steps(&engine, &session, 1e9, None).await?;
    }
    let per_session = 30;
    let (groups_before, grouped_before) = engine.commit_stats();
    let cpu_before = process_cpu_seconds();
    let start = Instant::now();
    let mut tasks = Vec::new();
    for n in 0..sessions {
        let engine = Arc::clone(&engine);
        let session = format!("{tag}-c{sessions}-{n}");
        tasks.push(tokio::spawn(async move {
            for k in 0..per_session {
                let refund = call(&format!("r{k}"), "process_refund", json!({"order_id": "#W1", "amount": 1.0}));
                engine.decide(&session, &refund).await?;
            }
            Ok::<_, anyhow::Error>(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let decisions = f64::from(sessions * per_session);
    let cpu = process_cpu_seconds() - cpu_before;
    let (groups, grouped) = engine.commit_stats();
    let group_mean = (grouped - grouped_before) as f64 / (groups - groups_before).max(1) as f64;
    Ok((engine, Concurrent { rate: decisions / elapsed, group_mean, cpu_us_per_decision: cpu * 1e6 / decisions }))
}

/// What [`concurrent_decisions`] measured.
struct Concurrent {
    rate: f64,
    group_mean: f64,
    cpu_us_per_decision: f64,
}

/// User + system CPU seconds this process has used so far (Linux; NaN
/// elsewhere). `/proc/self/stat` counts in clock ticks of 1/100 s, the
/// kernel's `USER_HZ` on every architecture Linux exports it for.
fn process_cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else { return f64::NAN };
    // The command name (field 2) may hold spaces; fields after its ')' are plain.
    let Some(rest) = stat.rsplit_once(')').map(|(_, rest)| rest) else { return f64::NAN };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 overall: indices 11 and 12 after the name.
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok());
    match (ticks(11), ticks(12)) {
        (Some(user), Some(system)) => (user + system) / 100.0,
        _ => f64::NAN,
    }
}

/// What the store alone commits for 64 sessions deciding at once: each
/// group writes what 64 decisions write (a journal entry and an audit record
/// each, of a real decision's size, a checkpoint every 16 entries, the
/// session rows, the audit head) in one transaction, one group after the
/// other, as 64 sessions each waiting for its decision allow. No engine: no
/// deciding, no queue. Decisions per second; the ceiling of
/// [`concurrent_decisions`] on this store and disk.
async fn store_floor(engine: &Engine, store: &Store, workflow: &WorkflowHandle, tag: &str) -> Result<(f64, String)> {
    let template = store
        .journal(&format!("{tag}-c64-0"))
        .await?
        .into_iter()
        .rev()
        .find(|entry| entry.kind == "decision")
        .context("the benchmark's sessions have no decision")?;
    let sessions: Vec<String> = (0..64).map(|n| format!("{tag}-f{n}")).collect();
    for session in &sessions {
        engine.create_session(workflow, session, None).await?;
    }
    // Each session's own state (entries of kind `refused` leave it as it is),
    // so the sessions still replay to their checkpoints afterwards.
    let (compiled, fresh) = engine.state(&format!("{tag}-f0")).await?;
    let state = fresh.to_checkpoint(&compiled).to_string();
    let rounds = 30;
    let start = Instant::now();
    for round in 0..rounds {
        let call_id = format!("r{round}");
        let mut tx = store.begin().await?;
        let ids: Vec<&str> = sessions.iter().map(String::as_str).collect();
        let pairs: Vec<(&str, &str)> = ids.iter().map(|id| (*id, call_id.as_str())).collect();
        tx.lock_and_prefetch(&ids, &pairs).await?;
        for session in &sessions {
            tx.lock(session).await?;
            let entry = tollgate_store::NewEntry {
                kind: "refused".into(),
                call_id: Some(call_id.clone()),
                body: template.body.clone(),
                at_ms: template.at_ms,
            };
            let audit = NewAudit { kind: "decision.allow".into(), body: template.body.clone(), at_ms: template.at_ms };
            // As the engine: a checkpoint every 16 entries of a session.
            let checkpoint = ((tx.info()?.last_seq + 1) % 16 == 0).then_some(state.as_str());
            tx.append(session, &[entry], &[audit], checkpoint).await?;
        }
        tx.commit().await?;
    }
    Ok((f64::from(64 * rounds) / start.elapsed().as_secs_f64(), template.body))
}

/// SQLite only: what the disk allows any store layout that can find a
/// session's entries again. Each commit appends 64 rows (one a session, the
/// text `body` of a real decision, a hash) to one table with one index, on
/// (session, number); nothing else: no audit copy, no session rows, no
/// checkpoints, no call lookup. Decisions per second, over every commit.
async fn disk_floor(store: &Store, tag: &str, body: String) -> Result<Option<f64>> {
    let Location::Sqlite(path) = store.location() else { return Ok(None) };
    let db = open_beside(path)?;
    let sessions: Vec<String> = (0..64).map(|n| format!("{tag}-f{n}")).collect();
    let group = tokio::task::spawn_blocking(move || -> Result<Duration> {
        db.execute_batch(
            "DROP TABLE IF EXISTS bench_floor; CREATE TABLE bench_floor (seq INTEGER PRIMARY KEY, session_id TEXT NOT NULL, n BIGINT NOT NULL, \
             body TEXT NOT NULL, hash TEXT NOT NULL); CREATE INDEX bench_floor_session ON bench_floor (session_id, n)",
        )?;
        let hash = "0".repeat(64);
        let rounds = 300i64;
        let start = Instant::now();
        for round in 0..rounds {
            db.execute_batch("BEGIN IMMEDIATE")?;
            for session in &sessions {
                let mut insert = db.prepare_cached("INSERT INTO bench_floor VALUES (NULL, ?1, ?2, ?3, ?4)")?;
                insert.execute(rusqlite::params![session, round, body, hash])?;
            }
            db.execute_batch("COMMIT")?;
        }
        // All commits counted, the WAL's checkpoints among them (as in the engine's figures).
        let per_group = start.elapsed() / u32::try_from(rounds)?;
        db.execute_batch("DROP TABLE bench_floor")?;
        Ok(per_group)
    })
    .await??;
    Ok(Some(64.0 / group.as_secs_f64()))
}

/// Appends 1,000,000 audit records in large transactions, then times a full verify.
async fn audit_verify(store: &Store, tag: &str) -> Result<(u64, Duration)> {
    let workflow = StoredWorkflow { hash: "bench".into(), name: "bench".into(), version: 1, text: String::new() };
    store.put_workflow(&workflow).await?;
    let session = NewSession {
        id: format!("{tag}-audit"),
        workflow_hash: "bench".into(),
        workflow_name: "bench".into(),
        workflow_version: 1,
        parent_id: None,
        created_ms: 0,
        tenant: "default".into(),
    };
    store.create_session(&session).await?;
    let body = json!({"call": {"id": "c1", "tool": "process_refund", "args": {"order_id": "#W1", "amount": 1.0}},
                      "decision": {"verdict": "allow", "idempotency_key": "audit/process_refund:c1"}})
    .to_string();
    let records: Vec<NewAudit> =
        (0..10_000).map(|_| NewAudit { kind: "decision.allow".into(), body: body.clone(), at_ms: 1 }).collect();
    for _ in 0..100 {
        let mut tx = store.lock_session(&session.id).await?;
        tx.append(&session.id, &[], &records, None).await?;
        tx.commit().await?;
    }
    let start = Instant::now();
    let report = store.verify_audit().await?;
    let elapsed = start.elapsed();
    if let Some(problem) = report.problem {
        anyhow::bail!("the benchmark's own audit log does not verify: {}", problem.message);
    }
    Ok((report.records, elapsed))
}

/// Milliseconds since the Unix epoch, to name this run's files.
fn now_ms() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis())
}
