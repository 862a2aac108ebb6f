#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // tests fail by panicking

use super::*;
use serde_json::json;

const REFERENCE: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/support-refunds.toml"));

fn parsed(text: &str) -> Vec<Trace> {
    parse(text, "t.jsonl").unwrap_or_else(|e| panic!("{e}"))
}

fn error(text: &str) -> String {
    match parse(text, "t.jsonl") {
        Ok(traces) => panic!("parsed {traces:?}"),
        Err(error) => error.to_string(),
    }
}

fn calls(trace: &Trace) -> Vec<(&str, &Json, &Recorded)> {
    trace
        .events
        .iter()
        .map(|e| {
            let call = e.call();
            (call.tool.as_str(), &call.arguments, &call.outcome)
        })
        .collect()
}

const TAU: &str = r#"{"id": "tau/1", "domain": "airline", "now": "2024-05-15T15:00:00-05:00", "events": [{"call": {"name": "get_user_details", "arguments": {"user_id": "u1"}}, "result": {"user_id": "u1"}, "error": null}, {"user_action": {"name": "toggle_roaming", "arguments": {}}, "result": "done", "error": null}, {"call": {"name": "cancel", "arguments": {"reservation_id": "R1"}}, "result": null, "error": "Error: not allowed"}], "expect": {"blocked_indexes": [2], "rule_ids": ["A-CANCEL"]}, "why": "ignored"}
{"id": "tau/2", "events": []}
"#;

#[test]
fn reads_tau_trace_lines() {
    let traces = parsed(TAU);
    assert_eq!(traces.len(), 2);
    let trace = &traces[0];
    assert_eq!((trace.id.as_str(), trace.format, trace.domain.as_deref()), ("tau/1", Format::Tau, Some("airline")));
    assert_eq!(trace.now.as_ref().map(|n| n.unix_ms), Some(1_715_803_200_000));
    assert!(matches!(trace.events[1], TraceEvent::UserAction(_)));
    assert_eq!(
        calls(trace),
        vec![
            ("get_user_details", &json!({"user_id": "u1"}), &Recorded::Result(json!({"user_id": "u1"}))),
            ("toggle_roaming", &json!({}), &Recorded::Result(json!("done"))),
            ("cancel", &json!({"reservation_id": "R1"}), &Recorded::Error("Error: not allowed".into())),
        ]
    );
    assert_eq!(trace.expect, Some(Expect { blocked_indexes: vec![2], rule_ids: vec!["A-CANCEL".into()] }));
    assert_eq!((traces[1].events.len(), traces[1].now.as_ref(), traces[1].expect.as_ref()), (0, None, None));
}

const OPENAI: &str = r##"{"id": "oa-1", "messages": [
  {"role": "system", "content": "You are a support agent."},
  {"role": "user", "content": "Refund my order"},
  {"role": "assistant", "content": null, "tool_calls": [
    {"id": "call_a", "type": "function", "function": {"name": "get_customer", "arguments": "{\"email\": \"a@example.com\", \"zip\": \"94107\"}"}},
    {"id": "call_b", "type": "function", "function": {"name": "lookup_order", "arguments": ""}}]},
  {"role": "tool", "tool_call_id": "call_b", "content": [{"type": "text", "text": "{\"order_id\": "}, {"type": "text", "text": "\"#W1\"}"}]},
  {"role": "tool", "tool_call_id": "call_a", "content": "not json"},
  {"role": "assistant", "tool_calls": [{"id": "call_c", "type": "function", "function": {"name": "process_refund", "arguments": "{\"order_id\": \"#W1\", \"amount\": 5}"}}]}
]}"##;

#[test]
fn reads_openai_transcripts_as_a_whole_file_and_as_lines() {
    for text in [OPENAI.to_owned(), OPENAI.replace('\n', " ") + "\n" + &OPENAI.replace('\n', " ")] {
        let traces = parsed(&text);
        let trace = &traces[0];
        assert_eq!((trace.id.as_str(), trace.format), ("oa-1", Format::OpenAi));
        assert_eq!(
            calls(trace),
            vec![
                (
                    "get_customer",
                    &json!({"email": "a@example.com", "zip": "94107"}),
                    &Recorded::Result(json!("not json"))
                ),
                ("lookup_order", &json!({}), &Recorded::Result(json!({"order_id": "#W1"}))),
                ("process_refund", &json!({"order_id": "#W1", "amount": 5}), &Recorded::Missing),
            ]
        );
    }
    // A bare array of messages; without an id the trace is named after the file and line.
    let bare = r#"[{"role": "assistant", "tool_calls": [{"id": "x", "function": {"name": "f", "arguments": "{}"}}]}, {"role": "tool", "tool_call_id": "x", "content": "42"}]"#;
    let traces = parsed(&format!("{bare}\n\n{bare}\n"));
    assert_eq!(traces.iter().map(|t| t.id.as_str()).collect::<Vec<_>>(), ["t.jsonl:1", "t.jsonl:3"]);
    assert_eq!(calls(&traces[0]), vec![("f", &json!({}), &Recorded::Result(json!(42)))]);
}

const ANTHROPIC: &str = r##"{"id": "an-1", "now": "2025-02-25T12:08:00-05:00", "messages": [
  {"role": "user", "content": "Refund my order"},
  {"role": "assistant", "content": [{"type": "text", "text": "Let me look."}, {"type": "tool_use", "id": "toolu_1", "name": "get_customer", "input": {"email": "a@example.com", "zip": "94107"}}]},
  {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": [{"type": "text", "text": "{\"verified\": true}"}]}]},
  {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_2", "name": "lookup_order", "input": {"order_id": "#W1"}}]},
  {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_2", "content": "timeout", "is_error": true}]}
], "expect": {"blocked_indexes": [], "rule_ids": []}}"##;

#[test]
fn reads_anthropic_transcripts() {
    let traces = parsed(ANTHROPIC);
    let trace = &traces[0];
    assert_eq!((trace.id.as_str(), trace.format), ("an-1", Format::Anthropic));
    assert_eq!(trace.now.as_ref().map(|n| n.text.as_str()), Some("2025-02-25T12:08:00-05:00"));
    assert_eq!(trace.expect, Some(Expect::default()));
    assert_eq!(
        calls(trace),
        vec![
            (
                "get_customer",
                &json!({"email": "a@example.com", "zip": "94107"}),
                &Recorded::Result(json!({"verified": true}))
            ),
            ("lookup_order", &json!({"order_id": "#W1"}), &Recorded::Error("timeout".into())),
        ]
    );
}

#[test]
fn malformed_input_is_an_error_naming_the_line_and_the_problem() {
    let cases: &[(&str, &str)] = &[
        ("", "holds no trace"),
        ("{\"id\": \"a\", \"events\": []}\n{\"id\": \"b\", \"events\": [}\n", "line 2: malformed JSON"),
        ("{\n  \"messages\": [\n  }\n", "line 3: malformed JSON"),
        (
            "{\"events\": [{\"call\": {\"name\": \"f\", \"arguments\": []}}]}",
            "line 1: events[0]: the arguments of f must be an object",
        ),
        ("{\"events\": [{\"nothing\": 1}]}", "events[0]: an event must have \"call\" or \"user_action\""),
        ("{\"events\": [], \"now\": \"yesterday\"}", "\"now\": 'yesterday' is not an RFC 3339 timestamp"),
        ("{\"events\": [], \"expect\": {\"blocked_indexes\": [-1]}}", "\"expect\" must be"),
        ("{\"events\": {}}", "\"events\" must be an array"),
        ("42", "line 1: not a trace"),
        (
            r#"[{"role": "tool", "tool_call_id": "nope", "content": "x"}]"#,
            "line 1: messages[0]: a tool result for unknown call id 'nope'",
        ),
        (
            r#"[{"role": "assistant", "tool_calls": [{"id": "a", "function": {"name": "f", "arguments": "{\"x\": "}}]}]"#,
            "messages[0]: tool_calls[0]: the arguments of f (call a) are not valid JSON",
        ),
        (
            r#"[{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t9", "content": "x"}]}]"#,
            "messages[0]: content[0]: a tool result for unknown call id 't9'",
        ),
        (
            r#"[{"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "f", "input": {}}, {"type": "tool_use", "id": "t", "name": "g", "input": {}}]}]"#,
            "the call id 't' is used twice",
        ),
        (
            r#"[{"role": "assistant", "tool_calls": [{"id": "a", "function": {"name": "f", "arguments": "{}"}}]}, {"role": "assistant", "content": [{"type": "tool_use", "id": "b", "name": "g", "input": {}}]}]"#,
            "mixes OpenAI tool calls and Anthropic tool_use blocks",
        ),
        (r#"[{"content": "hi"}]"#, "messages[0]: a message needs a string \"role\""),
    ];
    for (text, wanted) in cases {
        let got = error(text);
        assert!(got.contains(wanted), "{text:?}: wanted {wanted:?}, got {got:?}");
    }
}

fn refunds() -> Workflow {
    crate::compile(REFERENCE, "support-refunds.toml").unwrap_or_else(|p| panic!("{p:?}"))
}

/// A refund story in the τ format: verify, look up, refund, a second
/// lookup that shows another customer's order (withheld), an $800 refund
/// (escalated), a refund on an order never seen (blocked).
const STORY: &str = r##"{"id": "story", "events": [
 {"call": {"name": "get_customer", "arguments": {"email": "a@example.com", "zip": "94107"}}, "result": {"verified": true, "customer_id": "c_42", "email": "a@example.com", "tier": "gold"}, "error": null},
 {"call": {"name": "lookup_order", "arguments": {"order_id": "#W1"}}, "result": {"order_id": "#W1", "customer_id": "c_42", "total": 1000.0, "status": "delivered"}, "error": null},
 {"call": {"name": "process_refund", "arguments": {"order_id": "#W1", "amount": 40}}, "result": {"refund_id": "rf_1"}, "error": null},
 {"call": {"name": "lookup_order", "arguments": {"order_id": "#W2"}}, "result": {"order_id": "#W2", "customer_id": "c_7", "total": 10.0, "status": "delivered"}, "error": null},
 {"call": {"name": "process_refund", "arguments": {"order_id": "#W1", "amount": 800}}, "result": null, "error": null},
 {"call": {"name": "process_refund", "arguments": {"order_id": "#W2", "amount": 5}}, "result": null, "error": "not run"}
], "expect": {"blocked_indexes": [3, 4, 5], "rule_ids": ["order-visible-to-customer", "refund-over-500", "refund-order-owned"]}}"##;

#[test]
fn replay_decides_every_call_and_feeds_allowed_ones_their_results() {
    let workflow = refunds();
    let trace = &parsed(STORY)[0];
    let outcomes = replay(&workflow, trace);
    let summary: Vec<(usize, &str, Vec<&str>)> = outcomes
        .iter()
        .map(|o| (o.index, o.verdict().as_str(), o.reasons().iter().map(|r| r.rule_id.as_str()).collect()))
        .collect();
    assert_eq!(
        summary,
        vec![
            (0, "allow", vec![]),
            (1, "allow", vec![]),
            (2, "allow", vec![]),
            (3, "block", vec!["order-visible-to-customer"]),
            (4, "escalate", vec!["refund-over-500"]),
            (5, "block", vec!["refund-order-owned"]),
        ]
    );
    // The withheld lookup was allowed before it ran; its result was then withheld.
    assert_eq!(outcomes[3].decision.verdict(), Verdict::Allow);
    assert_eq!(compare(&workflow, trace, &outcomes), Vec::new());
    // Same workflow, same trace: the same outcomes.
    assert_eq!(replay(&workflow, trace), outcomes);
}

#[test]
fn compare_lists_every_difference() {
    let workflow = refunds();
    let mut trace = parsed(STORY).remove(0);
    trace.expect =
        Some(Expect { blocked_indexes: vec![2, 4, 5, 9], rule_ids: vec!["refund-over-500".into(), "R-X".into()] });
    let differences = compare(&workflow, &trace, &replay(&workflow, &trace));
    let lines: Vec<String> =
        differences.iter().map(|d| format!("{:?} {} expected {} got {}", d.index, d.tool, d.expected, d.got)).collect();
    assert_eq!(
        lines,
        vec![
            "Some(2) process_refund expected block or escalate got allow",
            "Some(3) lookup_order expected allow got block (order-visible-to-customer)",
            "Some(9) ? expected block or escalate got past the end of the trace",
            "None  expected a refusal naming rule R-X got refund-over-500, refund-order-owned",
        ]
    );
}

#[test]
fn rule_ids_match_exactly_or_by_a_sub_part() {
    assert!(rule_matches("A-BAG", "A-BAG"));
    assert!(rule_matches("A-BAG", "A-BAG.free"));
    assert!(rule_matches("A-BAG", "A-BAG/2"));
    assert!(!rule_matches("A-BAG", "A-BAGGAGE"));
    assert!(!rule_matches("A-BAG", "B-A-BAG"));
}

#[test]
fn user_actions_are_never_decided_and_a_missing_result_leaves_the_call_pending() {
    let workflow = refunds();
    let text = r#"{"id": "u", "events": [{"user_action": {"name": "reboot", "arguments": {}}, "result": null, "error": null}, {"call": {"name": "get_customer", "arguments": {"email": "a@example.com", "zip": "94107"}}}], "expect": {"blocked_indexes": [0]}}"#;
    let trace = &parsed(text)[0];
    let outcomes = replay(&workflow, trace);
    assert_eq!(outcomes.iter().map(|o| (o.index, o.verdict())).collect::<Vec<_>>(), vec![(1, Verdict::Allow)]);
    let differences = compare(&workflow, trace, &outcomes);
    assert_eq!(differences.len(), 1);
    assert_eq!(differences[0].got, "a user action, which is never decided");
}

#[test]
fn replay_decides_at_the_trace_clock() {
    let workflow = crate::compile(
        r#"
[workflow]
name = "clock"
version = 1
[tools.cancel]
[[tools.cancel.checks]]
id = "before-june"
rule = "now < timestamp('2024-06-01T00:00:00Z')"
message = "too late"
"#,
        "clock.toml",
    )
    .unwrap_or_else(|p| panic!("{p:?}"));
    let line = |now: &str| {
        format!(
            r#"{{"id": "c", "now": "{now}", "events": [{{"call": {{"name": "cancel", "arguments": {{}}}}, "result": {{}}}}]}}"#
        )
    };
    let verdict = |text: &str| replay(&workflow, &parsed(text)[0])[0].verdict();
    assert_eq!(verdict(&line("2024-05-15T15:00:00-05:00")), Verdict::Allow);
    assert_eq!(verdict(&line("2024-06-01T00:00:00Z")), Verdict::Block);
    // Without a clock the rule cannot be evaluated, and the call is blocked.
    assert_eq!(
        verdict(r#"{"id": "c", "events": [{"call": {"name": "cancel", "arguments": {}}, "result": {}}]}"#),
        Verdict::Block
    );
}

#[test]
fn an_expected_rule_may_be_named_by_the_policy_a_workflow_rule_enforces() {
    let text =
        REFERENCE.replace("id = \"refund-over-500\"\n", "id = \"refund-over-500\"\npolicy = [\"R-BIG-REFUND\"]\n");
    assert_ne!(text, REFERENCE);
    let with_policy = crate::compile(&text, "support-refunds.toml").unwrap_or_else(|p| panic!("{p:?}"));
    let mut trace = parsed(STORY).remove(0);
    trace.expect = Some(Expect { blocked_indexes: vec![3, 4, 5], rule_ids: vec!["R-BIG-REFUND".into()] });
    assert_eq!(compare(&with_policy, &trace, &replay(&with_policy, &trace)), Vec::new());
    let without = refunds();
    let differences = compare(&without, &trace, &replay(&without, &trace));
    assert_eq!(differences.len(), 1, "{differences:?}");
    assert_eq!(differences[0].expected, "a refusal naming rule R-BIG-REFUND");
}

#[test]
fn a_difference_on_a_call_the_tool_itself_failed_says_so() {
    let workflow = refunds();
    // A refund before anyone is verified: blocked; the tool failed it too.
    let text = r##"{"id": "t", "events": [{"call": {"name": "process_refund", "arguments": {"order_id": "#W1", "amount": 5}}, "result": null, "error": "Error: no such order"}, {"call": {"name": "process_refund", "arguments": {"order_id": "#W1", "amount": 5}}, "result": {}, "error": null}], "expect": {"blocked_indexes": [], "rule_ids": []}}"##;
    let trace = parsed(text).remove(0);
    let differences = compare(&workflow, &trace, &replay(&workflow, &trace));
    assert_eq!(differences.len(), 2, "{differences:?}");
    assert!(differences[0].got.ends_with("the tool itself failed this call: Error: no such order"), "{differences:?}");
    assert!(!differences[1].got.contains("the tool itself failed"), "{differences:?}");
}

#[test]
fn reads_claude_code_transcripts_with_subagents_in_time_order_and_client_tool_names() {
    // A parent's entries, then (as `tollgate replay` appends them) its
    // subagent's, whose call happened between the parent's two; a summary
    // and a system entry carry no calls.
    let line = |ts: &str, kind: &str, content: Json| {
        json!({"type": kind, "sessionId": "sess-1", "timestamp": ts, "uuid": ts,
               "message": {"role": kind, "content": content}})
        .to_string()
    };
    let text = [
        json!({"type": "summary", "sessionId": "sess-1", "summary": "a refund"}).to_string(),
        line("2026-12-03T10:00:01.000Z", "assistant", json!([{"type": "tool_use", "id": "toolu_1",
             "name": "mcp__shop__get_customer", "input": {"email": "a@example.com", "zip": "94107"}}])),
        line("2026-12-03T10:00:02.000Z", "user", json!([{"type": "tool_result", "tool_use_id": "toolu_1",
             "content": [{"type": "text", "text": "{\"verified\": true, \"customer_id\": \"c_42\", \"email\": \"a@example.com\", \"tier\": \"gold\"}"}]}])),
        line("2026-12-03T10:00:09.000Z", "assistant", json!([{"type": "tool_use", "id": "toolu_3",
             "name": "mcp__shop__process_refund", "input": {"order_id": "#W1", "amount": 30}}])),
        json!({"type": "system", "sessionId": "sess-1", "timestamp": "2026-12-03T10:00:09.500Z"}).to_string(),
        line("2026-12-03T10:00:05.000Z", "assistant", json!([{"type": "tool_use", "id": "toolu_2",
             "name": "mcp__shop__lookup_order", "input": {"order_id": "#W1"}}])),
        line("2026-12-03T10:00:06.000Z", "user", json!([{"type": "tool_result", "tool_use_id": "toolu_2",
             "content": "{\"order_id\": \"#W1\", \"customer_id\": \"c_42\", \"total\": 80.0, \"status\": \"delivered\"}"}])),
    ]
    .join("\n");
    let traces = parsed(&text);
    assert_eq!(traces.len(), 1);
    let trace = &traces[0];
    assert_eq!((trace.id.as_str(), trace.format.as_str()), ("sess-1", "claude-code"));
    let ids: Vec<Option<&str>> = trace.events.iter().map(|e| e.call().source_id.as_deref()).collect();
    assert_eq!(ids, [Some("toolu_1"), Some("toolu_2"), Some("toolu_3")]);
    assert_eq!(trace.events[2].call().outcome, Recorded::Missing);

    // The workflow's [tool_names] map the client's names for the replay.
    let text_with_names = REFERENCE.replacen("[tools.", "[tool_names]\nprefixes = [\"mcp__shop__\"]\n\n[tools.", 1);
    let workflow = crate::compile(&text_with_names, "support-refunds.toml").unwrap_or_else(|p| panic!("{p:?}"));
    let outcomes = replay(&workflow, trace);
    let verdicts: Vec<Verdict> = outcomes.iter().map(CallOutcome::verdict).collect();
    assert_eq!(verdicts, [Verdict::Allow, Verdict::Allow, Verdict::Allow], "{outcomes:?}");
    // Without them the names are undeclared tools, and refused.
    let refused = replay(&refunds(), trace);
    assert!(refused.iter().all(CallOutcome::refused), "{refused:?}");

    // A line that is not an entry, in a Claude Code transcript, is an error naming it.
    let broken = format!("{}\n{{\"type\": \"user\"}}", line("2026-12-03T10:00:01.000Z", "user", json!("hi")));
    assert!(error(&broken).contains("line 2"), "{}", error(&broken));
}
