//! The session clock (`now`, timestamps, durations), the `facts` table, and
//! keyed facts whose key comes from the call's arguments.

use serde_json::json;
use tollgate_core::{
    CallId, Event, SessionState, ToolCall, ToolOutcome, Verdict, Workflow, apply, compile, decide, evaluate_standalone,
};

const AIRLINE: &str = r#"
[workflow]
name = "time-and-facts"
version = 1

[facts.user]
identity = true
fields = { id = "string", membership = "string" }

[facts.reservation]
key = "id"
fields = { id = "string", user_id = "string", created_at = "string", cabin = "string", flights = "list" }

[facts.flight_status]
key = "id"
fields = { id = "string", status = "string" }

[tools.get_user_details]
args = { type = "object", required = ["user_id"], properties = { user_id = { type = "string" } } }

[[tools.get_user_details.establishes]]
fact = "user"
fields = { id = "result.user_id", membership = "result.membership" }

[tools.get_reservation_details]
requires = ["user"]
args = { type = "object", required = ["reservation_id"], properties = { reservation_id = { type = "string" } } }

[[tools.get_reservation_details.establishes]]
fact = "reservation"
when = "result.user_id == facts.user.id"
fields = { id = "result.reservation_id", user_id = "result.user_id", created_at = "result.created_at", cabin = "result.cabin", flights = "result.flights" }

[tools.get_flight_status]
args = { type = "object", required = ["flight_number", "date"], properties = { flight_number = { type = "string" }, date = { type = "string" } } }

[[tools.get_flight_status.establishes]]
fact = "flight_status"
fields = { id = "args.flight_number + '/' + args.date", status = "result" }

[tools.cancel_reservation]
side_effect = true
args = { type = "object", required = ["reservation_id"], properties = { reservation_id = { type = "string" } } }

[[tools.cancel_reservation.requires]]
fact = "user"

[[tools.cancel_reservation.requires]]
fact = "reservation"
key = "args.reservation_id"

[[tools.cancel_reservation.checks]]
id = "cancel-eligible"
rule = "reservation.cabin == 'business' || now - timestamp(reservation.created_at + '-05:00') <= duration('24h')"
message = "reservation {args.reservation_id} was booked more than 24 hours ago and is not business class"

[[tools.cancel_reservation.checks]]
id = "cancel-not-flown"
rule = "reservation.flights.all(f, (f.flight_number + '/' + f.date) in facts.flight_status && facts.flight_status[f.flight_number + '/' + f.date].status != 'landed')"
message = "check every flight of {args.reservation_id} with get_flight_status; none may have landed"
"#;

fn airline() -> Workflow {
    compile(AIRLINE, "airline.toml").unwrap_or_else(|p| panic!("{p:#?}"))
}

/// Milliseconds of an RFC 3339 time.
fn ms(text: &str) -> i64 {
    tollgate_core::trace::SessionTime::parse(text).unwrap().unix_ms
}

fn call_and_record(workflow: &Workflow, state: &mut SessionState, call: ToolCall, result: serde_json::Value) {
    let decision = decide(workflow, state, &call);
    assert_eq!(decision.verdict(), Verdict::Allow, "{:?}", decision.reasons());
    apply(workflow, state, Event::Decided { call: &call, decision: &decision });
    apply(workflow, state, Event::ResultRecorded { call: &call.id, result: &result, outcome: ToolOutcome::Succeeded });
}

/// A session with the user, reservation R1 (economy, booked 2024-05-14
/// 10:00 EST, one flight) and that flight's status read.
fn session(workflow: &Workflow, status: &str) -> SessionState {
    let mut state = SessionState::new(workflow);
    call_and_record(
        workflow,
        &mut state,
        ToolCall::new("c1", "get_user_details", json!({"user_id": "u1"})),
        json!({"user_id": "u1", "membership": "gold"}),
    );
    call_and_record(
        workflow,
        &mut state,
        ToolCall::new("c2", "get_reservation_details", json!({"reservation_id": "R1"})),
        json!({"reservation_id": "R1", "user_id": "u1", "created_at": "2024-05-14T10:00:00", "cabin": "economy",
               "flights": [{"flight_number": "HAT001", "date": "2024-05-16"}]}),
    );
    call_and_record(
        workflow,
        &mut state,
        ToolCall::new("c3", "get_flight_status", json!({"flight_number": "HAT001", "date": "2024-05-16"})),
        json!(status),
    );
    state
}

fn cancel(workflow: &Workflow, state: &SessionState, now: Option<&str>) -> tollgate_core::Decision {
    let call = ToolCall::new("c4", "cancel_reservation", json!({"reservation_id": "R1"}));
    let call = match now {
        Some(now) => call.at(ms(now)),
        None => call,
    };
    decide(workflow, state, &call)
}

#[test]
fn a_rule_reads_the_session_clock_of_the_call() {
    let workflow = airline();
    let state = session(&workflow, "available");
    // Booked 2024-05-14 10:00 EST: 23 hours later it may be cancelled...
    let within = cancel(&workflow, &state, Some("2024-05-15T09:00:00-05:00"));
    assert_eq!(within.verdict(), Verdict::Allow, "{:?}", within.reasons());
    // ...the same instant written in UTC is the same time...
    let within_utc = cancel(&workflow, &state, Some("2024-05-15T14:00:00Z"));
    assert_eq!(within_utc.verdict(), Verdict::Allow);
    // ...and a minute past 24 hours it may not.
    let late = cancel(&workflow, &state, Some("2024-05-15T10:01:00-05:00"));
    assert_eq!(late.verdict(), Verdict::Block);
    assert_eq!(late.rule_ids(), vec!["cancel-eligible"]);
}

#[test]
fn a_rule_that_reads_the_clock_blocks_when_the_call_has_none() {
    let workflow = airline();
    let state = session(&workflow, "available");
    let decision = cancel(&workflow, &state, None);
    assert_eq!(decision.verdict(), Verdict::Block);
    assert_eq!(decision.rule_ids(), vec!["cancel-eligible"]);
    assert!(decision.reasons()[0].message.contains("session clock"), "{:?}", decision.reasons());
}

#[test]
fn keyed_facts_can_take_their_key_from_the_call_and_rules_read_them_all() {
    let workflow = airline();
    let landed = session(&workflow, "landed");
    let key = "HAT001/2024-05-16";
    let (_, _, value) =
        landed.facts(&workflow).into_iter().find(|(name, k, _)| *name == "flight_status" && *k == Some(key)).unwrap();
    assert_eq!(value.field("status").and_then(|v| v.as_str()), Some("landed"));
    let decision = cancel(&workflow, &landed, Some("2024-05-15T09:00:00-05:00"));
    assert_eq!(decision.rule_ids(), vec!["cancel-not-flown"]);

    // Without the flight's status read at all, the same rule blocks.
    let mut unread = SessionState::new(&workflow);
    call_and_record(
        &workflow,
        &mut unread,
        ToolCall::new("c1", "get_user_details", json!({"user_id": "u1"})),
        json!({"user_id": "u1", "membership": "gold"}),
    );
    call_and_record(
        &workflow,
        &mut unread,
        ToolCall::new("c2", "get_reservation_details", json!({"reservation_id": "R1"})),
        json!({"reservation_id": "R1", "user_id": "u1", "created_at": "2024-05-14T10:00:00", "cabin": "economy",
               "flights": [{"flight_number": "HAT001", "date": "2024-05-16"}]}),
    );
    let decision = cancel(&workflow, &unread, Some("2024-05-15T09:00:00-05:00"));
    assert_eq!(decision.rule_ids(), vec!["cancel-not-flown"]);
}

#[test]
fn a_condition_can_read_the_session_facts() {
    // Another user's reservation establishes nothing: the `when` compares
    // the result with the verified user.
    let workflow = airline();
    let mut state = SessionState::new(&workflow);
    call_and_record(
        &workflow,
        &mut state,
        ToolCall::new("c1", "get_user_details", json!({"user_id": "u1"})),
        json!({"user_id": "u1", "membership": "gold"}),
    );
    let call = ToolCall::new("c2", "get_reservation_details", json!({"reservation_id": "R9"}));
    let decision = decide(&workflow, &state, &call);
    apply(&workflow, &mut state, Event::Decided { call: &call, decision: &decision });
    let result = json!({"reservation_id": "R9", "user_id": "u2", "created_at": "2024-05-14T10:00:00",
                        "cabin": "business", "flights": []});
    let effects = apply(
        &workflow,
        &mut state,
        Event::ResultRecorded { call: &CallId::new("c2"), result: &result, outcome: ToolOutcome::Succeeded },
    );
    assert!(effects.is_empty(), "{effects:?}");
    assert!(state.facts(&workflow).iter().all(|(name, _, _)| *name != "reservation"));
}

#[test]
fn time_facts_survive_a_checkpoint() {
    let workflow = airline();
    let state = session(&workflow, "available");
    let restored = SessionState::from_checkpoint(&workflow, &state.to_checkpoint(&workflow)).unwrap();
    assert_eq!(restored, state);
}

fn problems(text: &str) -> Vec<String> {
    match compile(text, "bad.toml") {
        Ok(_) => Vec::new(),
        Err(problems) => problems.into_iter().map(|p| p.message).collect(),
    }
}

#[test]
fn misuse_is_a_compile_problem() {
    // Arguments may key an instance, never fill in what the result says.
    let forged = AIRLINE.replace("status = \"result\" }", "status = \"args.date\" }");
    assert!(problems(&forged).iter().any(|p| p.contains("unknown name 'args'")), "{:?}", problems(&forged));
    // A result check runs after the decision: no clock there.
    let result_clock = format!(
        "{AIRLINE}\n[[tools.get_flight_status.result_checks]]\nid = \"x\"\nrule = \"now > timestamp('2024-01-01T00:00:00Z')\"\nmessage = \"m\"\n"
    );
    assert!(problems(&result_clock).iter().any(|p| p.contains("unknown name 'now'")), "{:?}", problems(&result_clock));
    // Unknown facts and fields are named.
    let unknown = AIRLINE.replace("facts.user.id\"", "facts.usr.id\"");
    assert!(problems(&unknown).iter().any(|p| p.contains("no fact named 'usr'")), "{:?}", problems(&unknown));
    let field = AIRLINE.replace("facts.user.id\"", "facts.user.email\"");
    assert!(problems(&field).iter().any(|p| p.contains("fact 'user' has no field 'email'")), "{:?}", problems(&field));
}

fn eval(source: &str) -> Result<tollgate_core::Value, String> {
    evaluate_standalone(source, &json!({}), &json!(null))
}

#[test]
fn timestamps_and_durations_follow_cel() {
    for rule in [
        "duration('1h30m') == duration('5400s')",
        "duration('1.5h') == duration('90m')",
        "duration('-2s') < duration('0')",
        "duration('300ms') + duration('700ms') == duration('1s')",
        "timestamp('2024-05-15T15:00:00-05:00') == timestamp('2024-05-15T20:00:00Z')",
        "timestamp('2024-05-15T15:00:00-05:00') - timestamp('2024-05-14T15:00:00-05:00') == duration('24h')",
        "timestamp('2024-05-15T00:00:00Z') + duration('1h') > timestamp('2024-05-15T00:59:59Z')",
        "string(timestamp('2024-05-15T15:00:00-05:00')) == '2024-05-15T20:00:00Z'",
        "string(duration('90m')) == '5400s'",
        "string(duration('1.25s')) == '1.25s'",
        "int(timestamp('1970-01-01T00:01:00Z')) == 60",
        "int(timestamp('1969-12-31T23:59:59.5Z')) == -1",
    ] {
        assert_eq!(eval(rule), Ok(tollgate_core::Value::Bool(true)), "{rule}");
    }
    for bad in [
        "duration('1x')",
        "duration('')",
        "duration('h')",
        "duration('1..5h')",
        "timestamp('2024-05-15')",
        "timestamp('2024-05-15T15:00:00') < timestamp('2024-05-15T15:00:00Z')",
        "timestamp('2024-05-15T15:00:00Z') + timestamp('2024-05-15T15:00:00Z')",
        "duration('1h') < 5",
        "duration('9999999999h')",
    ] {
        assert!(eval(bad).is_err(), "{bad} should be an error, got {:?}", eval(bad));
    }
}

#[test]
fn sum_adds_a_list_of_numbers() {
    assert_eq!(eval("sum([1, 2, 3]) == 6"), Ok(tollgate_core::Value::Bool(true)));
    assert_eq!(eval("sum([1.5, 2]) == 3.5"), Ok(tollgate_core::Value::Bool(true)));
    assert_eq!(eval("sum([]) == 0"), Ok(tollgate_core::Value::Bool(true)));
    assert_eq!(eval("sum([2, 3].map(x, x * 10)) == 50"), Ok(tollgate_core::Value::Bool(true)));
    assert!(eval("sum(['a'])").is_err());
    assert!(eval("sum([1, 'a'])").is_err());
    assert!(eval("sum([1, 2u])").is_err());
    assert!(eval("sum([9223372036854775807, 1])").is_err());
}

#[test]
fn computed_facts_survive_a_checkpoint_exactly() {
    let workflow = compile(
        r#"
[workflow]
name = "computed"
version = 1
[facts.reading]
fields = { count = "any", when = "any", ratio = "double" }
[tools.read]
[[tools.read.establishes]]
fact = "reading"
fields = { count = "uint(result.n)", when = "timestamp(result.at)", ratio = "result.a / result.b" }
"#,
        "computed.toml",
    )
    .unwrap();
    let mut state = SessionState::new(&workflow);
    call_and_record(
        &workflow,
        &mut state,
        ToolCall::new("c1", "read", json!({})),
        json!({"n": 7, "at": "2024-05-15T15:00:00-05:00", "a": 1.0, "b": 4.0}),
    );
    let (_, _, value) = state.facts(&workflow).into_iter().next().unwrap();
    // Held as JSON holds them: the uint as an int, the timestamp as text.
    assert_eq!(value.field("count"), Some(&tollgate_core::Value::Int(7)));
    assert_eq!(value.field("when").and_then(|v| v.as_str()), Some("2024-05-15T20:00:00Z"));
    let restored = SessionState::from_checkpoint(&workflow, &state.to_checkpoint(&workflow)).unwrap();
    assert_eq!(restored, state);
    // A ratio that is not a number is not a fact.
    let mut infinite = SessionState::new(&workflow);
    let call = ToolCall::new("c1", "read", json!({}));
    let decision = decide(&workflow, &infinite, &call);
    apply(&workflow, &mut infinite, Event::Decided { call: &call, decision: &decision });
    let result = json!({"n": 7, "at": "2024-05-15T15:00:00-05:00", "a": 1.0, "b": 0.0});
    let effects = apply(
        &workflow,
        &mut infinite,
        Event::ResultRecorded { call: &call.id, result: &result, outcome: ToolOutcome::Succeeded },
    );
    assert!(matches!(&effects[..], [tollgate_core::Effect::FactNotRecorded { .. }]), "{effects:?}");
}
