//! `compile` reports every problem with its line and column.

use tollgate_core::{Problem, compile};

fn problems(text: &str) -> Vec<Problem> {
    match compile(text, "w.toml") {
        Ok(_) => Vec::new(),
        Err(problems) => problems,
    }
}

fn rendered(text: &str) -> Vec<String> {
    problems(text).iter().map(ToString::to_string).collect()
}

const HEADER: &str = "[workflow]\nname = \"t\"\nversion = 1\n";

#[test]
fn reference_workflow_compiles_with_expected_bypass_analysis() {
    let text = include_str!("../../../../examples/support-refunds.toml");
    let workflow = compile(text, "support-refunds.toml").unwrap_or_else(|p| panic!("{p:?}"));
    let analysis: Vec<(String, Vec<String>)> =
        workflow.analysis().guarded().iter().map(|g| (g.tool.clone(), g.must_establish.clone())).collect();
    let owned = |items: &[&str]| items.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert!(analysis.contains(&("process_refund".into(), owned(&["customer", "order"]))));
    assert!(analysis.contains(&("delete_account".into(), owned(&["customer", "reverification"]))));
    assert!(!analysis.iter().any(|(tool, _)| tool == "get_customer"), "an unguarded tool is not listed");
}

#[test]
fn malformed_toml_is_positioned() {
    let text = format!("{HEADER}[tools.a]\nside_effect = maybe\n");
    let found = rendered(&text);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].starts_with("w.toml:5:15: malformed workflow"), "{found:?}");
}

#[test]
fn unknown_keys_are_rejected() {
    let text = format!("{HEADER}[tools.a]\nrequirez = [\"x\"]\n");
    let found = rendered(&text);
    assert!(found[0].contains("unknown field `requirez`"), "{found:?}");
    assert!(found[0].starts_with("w.toml:5:"), "{found:?}");
}

#[test]
fn unknown_fact_and_unsatisfiable_gate() {
    let text = format!(
        "{HEADER}[facts.customer]\nfields = {{ id = \"string\" }}\n[tools.refund]\nrequires = [\"customer\", \"ghost\"]\n"
    );
    let found = rendered(&text);
    assert!(found.iter().any(|p| p.contains("requires unknown fact 'ghost'")), "{found:?}");
    assert!(found.iter().any(|p| p.contains("requires fact 'customer', which no tool establishes")), "{found:?}");
}

#[test]
fn prerequisite_cycle_is_reported_with_its_path() {
    let text = format!(
        "{HEADER}[facts.a]\nfields = {{ id = \"string\" }}\n[facts.b]\nfields = {{ id = \"string\" }}\n\
         [tools.make_a]\nrequires = [\"b\"]\n[[tools.make_a.establishes]]\nfact = \"a\"\nfields = {{ id = \"result.id\" }}\n\
         [tools.make_b]\nrequires = [\"a\"]\n[[tools.make_b.establishes]]\nfact = \"b\"\nfields = {{ id = \"result.id\" }}\n"
    );
    let found = rendered(&text);
    assert!(found.iter().any(|p| p.contains("prerequisite cycle a <- make_a needs b <- make_b needs a")), "{found:?}");
}

#[test]
fn cel_syntax_error_points_into_the_rule() {
    let text =
        format!("{HEADER}[tools.refund]\n[[tools.refund.checks]]\nrule = \"args.amount <= \"\nmessage = \"m\"\n");
    let found = problems(&text);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].line, 6);
    assert!(found[0].column > 8, "column inside the rule string: {:?}", found[0]);
    assert!(found[0].message.contains("CEL syntax error"), "{found:?}");
}

#[test]
fn rules_may_not_name_undeclared_fields() {
    let text = format!(
        "{HEADER}[facts.order]\nkey = \"id\"\nfields = {{ id = \"string\", total = \"double\" }}\n\
         [tools.lookup]\n[[tools.lookup.establishes]]\nfact = \"order\"\nfields = {{ id = \"result.id\", total = \"result.total\" }}\n\
         [tools.refund]\nrequires = [\"order[args.order_id]\"]\nargs = {{ type = \"object\", properties = {{ order_id = {{ type = \"string\" }}, amount = {{ type = \"number\" }} }} }}\n\
         [[tools.refund.checks]]\nrule = \"args.amout <= order.totl\"\nmessage = \"m\"\n\
         [[tools.refund.checks]]\nrule = \"customer.id == 'x'\"\nmessage = \"m\"\n\
         [[tools.refund.checks]]\nrule = \"session.refunds > 1\"\nmessage = \"m\"\n"
    );
    let found = rendered(&text);
    assert!(
        found.iter().any(|p| p.contains("args has no field 'amout': the tool's schema declares amount, order_id")),
        "{found:?}"
    );
    assert!(found.iter().any(|p| p.contains("unknown name 'customer'")), "{found:?}");
    assert!(found.iter().any(|p| p.contains("session has no field 'refunds'")), "{found:?}");
}

#[test]
fn fact_fields_come_from_results_only() {
    let text = format!(
        "{HEADER}[facts.customer]\nfields = {{ id = \"string\" }}\n[tools.get]\n\
         args = {{ type = \"object\", properties = {{ id = {{ type = \"string\" }} }} }}\n\
         [[tools.get.establishes]]\nfact = \"customer\"\nfields = {{ id = \"args.id\" }}\n"
    );
    let found = rendered(&text);
    assert!(found.iter().any(|p| p.contains("unknown name 'args'")), "{found:?}");
}

#[test]
fn invalid_json_schema_is_reported() {
    let text = format!("{HEADER}[tools.a]\nargs = {{ type = \"objekt\" }}\n");
    let found = rendered(&text);
    assert!(found.iter().any(|p| p.contains("args is not a valid JSON Schema")), "{found:?}");
    assert!(found[0].starts_with("w.toml:5:"), "{found:?}");
}

#[test]
fn escalation_urgency_must_be_a_declared_level() {
    let text = format!(
        "{HEADER}[tools.a]\n[[tools.a.escalate]]\nrule = \"true\"\nreason = \"r\"\nurgency = \"asap\"\nrecommended_action = \"x\"\n"
    );
    let found = rendered(&text);
    assert!(
        found.iter().any(|p| p.contains("urgency 'asap', which is not one of low, normal, high, critical")),
        "{found:?}"
    );
}

#[test]
fn every_problem_is_reported_not_just_the_first() {
    let text = format!(
        "{HEADER}[tools.a]\nrequires = [\"x\"]\n[tools.b]\nrequires = [\"y\"]\n[[tools.b.checks]]\nrule = \"(\"\nmessage = \"m\"\n"
    );
    assert!(problems(&text).len() >= 3, "{:?}", rendered(&text));
}

#[test]
fn invariants_are_validated_but_never_decide() {
    let base = format!(
        "{HEADER}[facts.customer]\nfields = {{ id = \"string\" }}\n[facts.order]\nkey = \"id\"\nfields = {{ id = \"string\", total = \"double\" }}\n\
         [aggregates.paid]\ntool = \"pay\"\nsum = \"args.amount\"\nby = \"args.order_id\"\n\
         [tools.get]\n[[tools.get.establishes]]\nfact = \"customer\"\nfields = {{ id = \"result.id\" }}\n\
         [tools.pay]\nargs = {{ type = \"object\", properties = {{ amount = {{ type = \"number\" }}, order_id = {{ type = \"string\" }} }} }}\n"
    );
    let good = format!(
        "{base}[[invariants]]\nid = \"paid-within-total\"\ntools = [\"pay\"]\n\
         rule = \"has(facts.customer) && paid(args.order_id) + args.amount <= facts.order[args.order_id].total && session.paid >= 0.0 && [1].all(x, x > 0)\"\n\
         message = \"m\"\n"
    );
    let workflow = compile(&good, "w.toml").unwrap_or_else(|p| panic!("{p:?}"));
    assert_eq!(workflow.invariants().len(), 1);
    assert_eq!(workflow.invariants()[0].id(), "paid-within-total");
    assert_eq!(workflow.invariants()[0].tool_names(), ["pay"]);
    // An invariant that is false for every call changes no decision.
    let never = format!("{base}[[invariants]]\nid = \"never\"\ntools = [\"pay\"]\nrule = \"false\"\nmessage = \"m\"\n");
    let workflow = compile(&never, "w.toml").unwrap_or_else(|p| panic!("{p:?}"));
    let state = tollgate_core::SessionState::new(&workflow);
    let call = tollgate_core::ToolCall::new("c1", "pay", serde_json::json!({"amount": 1.0, "order_id": "o"}));
    assert_eq!(tollgate_core::decide(&workflow, &state, &call).verdict(), tollgate_core::Verdict::Allow);

    for (rule, expected) in [
        ("facts.ghost.id == ''", "facts has no 'ghost' (declared: customer, order)"),
        ("facts.customer.name == ''", "fact 'customer' has no field 'name' (declared: id)"),
        ("facts.order['x'].price > 0.0", "fact 'order' has no field 'price' (declared: id, total)"),
        ("session.refunded > 0.0", "session has no field 'refunded'"),
        ("args.tip > 0.0", "args has no field 'tip' in the schema of pay"),
        ("result.ok", "unknown name 'result'"),
        ("refunded('x') > 0.0", "unknown function 'refunded'"),
        ("args.amount >", "CEL syntax error"),
    ] {
        let text = format!("{base}[[invariants]]\nid = \"i\"\ntools = [\"pay\"]\nrule = \"{rule}\"\nmessage = \"m\"\n");
        let found = rendered(&text);
        assert!(found.iter().any(|p| p.contains("invariant 'i' rule: ") && p.contains(expected)), "{rule}: {found:?}");
    }
    // The session clock and sum(list) are there for invariants as for checks.
    let timed = format!(
        "{base}[[invariants]]\nid = \"t\"\ntools = [\"pay\"]\n\
         rule = \"now - timestamp('2024-01-01T00:00:00Z') >= duration('1h') && sum([args.amount]) > 0.0\"\nmessage = \"m\"\n"
    );
    assert!(rendered(&timed).is_empty(), "{:?}", rendered(&timed));
    let unknown_tool =
        format!("{base}[[invariants]]\nid = \"i\"\ntools = [\"nope\"]\nrule = \"true\"\nmessage = \"m\"\n");
    assert!(rendered(&unknown_tool).iter().any(|p| p.contains("invariant 'i' covers unknown tool 'nope'")));
    let twice = format!(
        "{good}[[invariants]]\nid = \"paid-within-total\"\ntools = [\"pay\"]\nrule = \"true\"\nmessage = \"m\"\n"
    );
    assert!(rendered(&twice).iter().any(|p| p.contains("invariant id 'paid-within-total' is empty or used twice")));
}

#[test]
fn rules_name_the_written_policy_they_enforce() {
    let text = format!(
        "{HEADER}[facts.user]\nidentity = true\nfields = {{ id = \"string\" }}\n\
         [tools.cancel]\n\
         [[tools.cancel.requires]]\nfact = \"user\"\nid = \"R-AUTH\"\npolicy = [\"R01\"]\ndescription = \"authenticate first\"\n\
         [[tools.cancel.checks]]\nid = \"R-CANCEL\"\nrule = \"true\"\nmessage = \"m\"\npolicy = [\"R13\", \"R11\"]\n\
         [[tools.cancel.escalate]]\nid = \"R-CANCEL\"\nrule = \"false\"\nreason = \"r\"\nurgency = \"high\"\n\
         recommended_action = \"a\"\npolicy = [\"R13\", \"R07\"]\n\
         [tools.other]\nrequires = [\"user\"]\n\
         [tools.login]\n[[tools.login.establishes]]\nfact = \"user\"\nfields = {{ id = \"result\" }}\n"
    );
    let workflow = compile(&text, "w.toml").unwrap_or_else(|p| panic!("{p:?}"));
    assert_eq!(workflow.policy_refs("R-AUTH"), vec!["R01"]);
    // Every rule with the id contributes, each reference once.
    assert_eq!(workflow.policy_refs("R-CANCEL"), vec!["R13", "R11", "R07"]);
    assert!(workflow.policy_refs("other.requires.1").is_empty());
    // A misspelt key is a problem, not silently ignored.
    let misspelt = text.replace("policy = [\"R01\"]", "polcy = [\"R01\"]");
    assert!(rendered(&misspelt).iter().any(|p| p.contains("polcy")), "{:?}", rendered(&misspelt));
}

#[test]
fn the_workflow_name_is_a_line_of_text() {
    let tool = "[tools.a]\nside_effect = false\n";
    for name in ["", "   ", "a\\u0000b", "two\\nlines", &"n".repeat(129)] {
        let text = format!("[workflow]\nname = \"{name}\"\nversion = 1\n{tool}");
        // Compiled still (a workflow stored before the check must load) ...
        let workflow = compile(&text, "w.toml").unwrap_or_else(|p| panic!("{p:?}"));
        // ... but named as a problem where a workflow is validated or registered.
        let problem = tollgate_core::workflow_name_problem(workflow.name()).unwrap_or_else(|| panic!("{name:?}"));
        assert!(problem.contains("workflow.name must be 1 to 128 bytes"), "{problem}");
    }
    assert_eq!(tollgate_core::workflow_name_problem(&"n".repeat(128)), None);
    assert_eq!(tollgate_core::workflow_name_problem("support-refunds"), None);
}

#[test]
fn keys_that_can_be_null_or_missing_are_warned_about_with_their_place() {
    let text = format!(
        "{HEADER}[facts.order]\nkey = \"id\"\nfields = {{ id = \"string\" }}\n\
         [aggregates.paid]\ntool = \"pay\"\nsum = \"args.amount\"\nby = \"args.invoice\"\n\
         [tools.lookup]\nargs = {{ type = \"object\", required = [\"id\"], properties = {{ id = {{ type = \"string\" }} }} }}\n\
         [[tools.lookup.establishes]]\nfact = \"order\"\nfields = {{ id = \"result.id\" }}\n\
         [tools.pay]\nrequires = [\"order[args.order_id]\"]\n\
         args = {{ type = \"object\", required = [\"amount\", \"invoice\"], properties = {{ amount = {{ type = \"number\", exclusiveMinimum = 0 }}, \
         invoice = {{ type = [\"string\", \"null\"] }}, order_id = {{ type = \"string\" }} }} }}\n"
    );
    let workflow = compile(&text, "w.toml").unwrap_or_else(|p| panic!("{p:?}"));
    let warnings: Vec<String> = workflow.warnings().iter().map(ToString::to_string).collect();
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(
        warnings.iter().any(|w| w.starts_with("w.toml:10:6: aggregate 'paid' is keyed by args.invoice")
            && w.contains("args.invoice may be null")
            && w.ends_with("blocked by aggregate.paid")),
        "{warnings:?}"
    );
    assert!(
        warnings.iter().any(|w| w.contains("gate 'order[args.order_id]'")
            && w.contains("args.order_id may be missing")
            && w.ends_with("blocked by pay.requires.1")),
        "{warnings:?}"
    );
    // Required and typed as a single value: nothing to warn about.
    let fixed = text
        .replace("invoice = {{ type = [\"string\", \"null\"] }}", "invoice = { type = \"string\" }")
        .replace("invoice = { type = [\"string\", \"null\"] }", "invoice = { type = \"string\" }")
        .replace("required = [\"amount\", \"invoice\"]", "required = [\"amount\", \"invoice\", \"order_id\"]");
    let workflow = compile(&fixed, "w.toml").unwrap_or_else(|p| panic!("{p:?}"));
    assert!(workflow.warnings().is_empty(), "{:?}", workflow.warnings());
    // The shipped workflows key only by required, typed arguments.
    for (name, text) in [
        ("support-refunds", include_str!("../../../../examples/support-refunds.toml")),
        ("tau2-retail", include_str!("../../../../examples/tau2-retail.toml")),
        ("tau2-airline", include_str!("../../../../examples/tau2-airline.toml")),
        ("tau2-telecom", include_str!("../../../../examples/tau2-telecom.toml")),
        ("multi-concern", include_str!("../../../../examples/multi-concern.toml")),
    ] {
        let workflow = compile(text, name).unwrap_or_else(|p| panic!("{p:?}"));
        assert!(workflow.warnings().is_empty(), "{name}: {:?}", workflow.warnings());
    }
}

#[test]
fn names_with_control_characters_are_problems() {
    let text = format!("{HEADER}[tools.\"pay\\u0000\"]\n[facts.\"c\\u0007\"]\nfields = {{ id = \"string\" }}\n");
    let found = rendered(&text);
    assert!(
        found.iter().any(|p| p.contains("tool name \"pay\\0\" must be text without control characters")),
        "{found:?}"
    );
    assert!(found.iter().any(|p| p.contains("fact name \"c\\u{7}\"")), "{found:?}");
}

#[test]
fn matches_takes_a_literal_valid_pattern_of_bounded_size() {
    let check = |rule: &str| {
        format!(
            "{HEADER}[tools.a]\nargs = {{ type = \"object\", properties = {{ id = {{ type = \"string\" }}, pattern = {{ type = \"string\" }} }} }}\n[[tools.a.checks]]\nrule = {rule:?}\nmessage = \"m\"\n"
        )
    };
    // Literal patterns compile, in both call styles.
    assert_eq!(rendered(&check("args.id.matches('^#W[0-9]+$') && matches(args.id, 'W')")), Vec::<String>::new());
    // A pattern from the call itself is refused where it is written.
    let found = rendered(&check("args.id.matches(args.pattern)"));
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].starts_with("w.toml:7:"), "{found:?}");
    assert!(found[0].contains("takes its pattern as a string literal written in the rule"), "{found:?}");
    // A malformed pattern says why.
    let found = rendered(&check("args.id.matches('[0-9')"));
    assert!(found.iter().any(|p| p.contains("is not a valid regular expression")), "{found:?}");
    // A pattern whose automaton would be huge is refused, not compiled at any cost.
    let found = rendered(&check("args.id.matches('(\\\\w{100}){100}')"));
    assert!(found.iter().any(|p| p.contains("is not a valid regular expression")), "{found:?}");
}

#[test]
fn holes_that_let_money_through_while_every_rule_passes_are_warned_about() {
    let text = |amount: &str, checks: &str, wipe_guard: &str| {
        format!(
            "{HEADER}[limits]\nfacts_max = 8\n\
             [aggregates.refunded]\ntool = \"refund\"\nsum = \"args.amount\"\n\
             [tools.refund]\nside_effect = true\n\
             args = {{ type = \"object\", required = [\"amount\"], properties = {{ amount = {amount} }} }}\n\
             [[tools.refund.checks]]\nrule = \"{checks}\"\nmessage = \"over the limit\"\n\
             [tools.wipe]\nside_effect = true\n{wipe_guard}"
        )
    };
    let warnings = |text: &str| -> Vec<String> {
        let workflow = compile(text, "w.toml").unwrap_or_else(|p| panic!("{p:?}"));
        workflow.warnings().iter().map(ToString::to_string).collect()
    };

    let found = warnings(&text("{ type = \"number\" }", "session.refunded + args.amount <= 500.0", ""));
    assert_eq!(found.len(), 2, "{found:?}");
    // The aggregate, at its sum: a negative refund lowers the total.
    assert!(
        found.iter().any(|w| w.starts_with("w.toml:8:7: aggregate 'refunded' sums args.amount")
            && w.contains("lets be zero or negative")
            && w.contains("add `exclusiveMinimum = 0`")),
        "{found:?}"
    );
    // The unguarded side effect, at its name.
    assert!(
        found
            .iter()
            .any(|w| w.starts_with("w.toml:15:8: tool 'wipe' changes something (side_effect) but nothing guards it")),
        "{found:?}"
    );

    // Bounded by the schema, or by a check, and guarded: nothing to warn about.
    let guard = "[[tools.wipe.escalate]]\nrule = \"true\"\nreason = \"r\"\nurgency = \"high\"\nrecommended_action = \"a\"\n\
                 [tools.handoff]\n[handoff]\ntool = \"handoff\"\nrequired = [\"root_cause\"]\n";
    for (amount, checks) in [
        ("{ type = \"number\", exclusiveMinimum = 0 }", "session.refunded + args.amount <= 500.0"),
        ("{ type = \"number\", minimum = 0.01 }", "session.refunded + args.amount <= 500.0"),
        ("{ type = \"number\" }", "args.amount > 0 && session.refunded + args.amount <= 500.0"),
    ] {
        let found = warnings(&text(amount, checks, guard));
        assert!(found.is_empty(), "{amount} / {checks}: {found:?}");
    }
    // `minimum = 0` still admits zero: a call that adds nothing to the total
    // yet counts as a refund, which the rule of thumb flags too.
    let found = warnings(&text("{ type = \"number\", minimum = 0 }", "session.refunded + args.amount <= 500.0", guard));
    assert_eq!(found.len(), 1, "{found:?}");
}
