//! Property test: `compile` never panics, whatever text it is given, and
//! every problem it reports points inside that text.
//!
//! Inputs: arbitrary strings, arbitrary bytes read as lossy UTF-8,
//! TOML-flavoured noise, and the reference workflow
//! (`examples/support-refunds.toml`) mutated line by line and character by
//! character: deletions, insertions (of its own lines, of hand-picked
//! troublesome snippets, of single characters), duplications, swaps,
//! truncation, and rules replaced by random CEL-like text.
//!
//! For `Err(problems)` the property is: the list is not empty, and each
//! problem names the file it was given, has a non-empty message, a line in
//! `1..=lines + 1` and a column in `1..=(length of that line in chars) + 1`.

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::strategy::ValueTree;
use proptest::test_runner::FileFailurePersistence;
use tollgate_core::compile;

const REFERENCE: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/support-refunds.toml"));
const FILE: &str = "fuzzed.toml";

/// Checks one input; `Err` describes what is wrong.
fn check(text: &str) -> Result<(), TestCaseError> {
    let problems = match compile(text, FILE) {
        Ok(_) => return Ok(()),
        Err(problems) => problems,
    };
    prop_assert!(!problems.is_empty(), "compile failed without a problem");
    let lines: Vec<&str> = text.split('\n').collect();
    for problem in &problems {
        prop_assert_eq!(&problem.file, FILE);
        prop_assert!(!problem.message.trim().is_empty(), "empty message: {:?}", problem);
        prop_assert!(problem.line >= 1, "line below 1: {:?}", problem);
        prop_assert!(problem.column >= 1, "column below 1: {:?}", problem);
        prop_assert!(
            problem.line <= lines.len() + 1,
            "line {} past the end ({} lines): {:?}",
            problem.line,
            lines.len(),
            problem
        );
        if let Some(line) = lines.get(problem.line - 1) {
            let width = line.chars().count();
            prop_assert!(
                problem.column <= width + 1,
                "column {} past the end of line {} ({} chars): {:?}",
                problem.column,
                problem.line,
                width,
                problem
            );
        }
    }
    Ok(())
}

// ------------------------------------------------------------------ mutations

/// Snippets that are easy to get wrong: duplicate tables, wrong types,
/// unknown names, broken CEL, odd quoting, control characters.
const SNIPPETS: [&str; 34] = [
    "[workflow]",
    "[facts.customer]",
    "[tools.process_refund]",
    "[[tools.process_refund.checks]]",
    "[[tools.process_refund.escalate]]",
    "[[tools.nope.establishes]]",
    "[tools.x]\nrequires = [\"nope\"]",
    "requires = [\"customer\", \"customer\"]",
    "requires = 5",
    "fields = { id = \"int\" }",
    "fields = { id = 3 }",
    "key = \"args.zz\"",
    "version = -1",
    "version = 99999999999999999999",
    "name = \"\"",
    "rule = \"\"",
    "rule = \"args.amount > \"",
    "rule = \"args.amount + 'a' > 1\"",
    "rule = \"unknown_fn(1)\"",
    "rule = \"args.items.all(y, y\"",
    "rule = \"((((((((((((((((((((1))))))))))))))))))))\"",
    "rule = \"session.nope > 1\"",
    "rule = \"refunded()\"",
    "rule = \"\\u00e9 == 'é'\"",
    "rule = '''\nargs.amount >\n 1'''",
    "rule = 'args.amount > 1.0e'",
    "message = \"{args.amount\"",
    "message = \"{}\"",
    "\"\"\"",
    "'''",
    "\u{feff}",
    "\u{0}",
    "= =",
    "a.b.c = { x = [1, { y = \"z\" }] }",
];

/// Characters inserted one at a time.
const CHARS: [char; 24] = [
    '"', '\'', '[', ']', '{', '}', '=', '\n', '#', '.', ',', '\\', '(', ')', '&', '|', '!', ' ', '\t', 'é', '\u{0}',
    '\r', 'x', '0',
];

/// CEL-like text put in place of a rule.
fn cel_noise() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z._ ()\\[\\]<>=!&|+*/%?:,'0-9-]{0,40}",
        prop::collection::vec(
            prop::sample::select(vec![
                "args",
                "result",
                "order",
                "customer",
                "session",
                ".",
                "amount",
                "total",
                "status",
                " == ",
                " < ",
                " && ",
                " || ",
                "!",
                "(",
                ")",
                "[",
                "]",
                "'x'",
                "1",
                "2.5",
                "3u",
                "size(",
                "has(",
                ".all(o, ",
                ".exists(o, ",
                "o",
                " ? ",
                " : ",
                " in ",
                "refunded(",
                "null",
                "true",
                "-",
                "+",
                ",",
            ]),
            0..16,
        )
        .prop_map(|parts| parts.concat()),
    ]
}

#[derive(Clone, Debug)]
enum Mutation {
    DeleteLine(Index),
    DuplicateLine(Index),
    SwapLines(Index, Index),
    /// A line of the reference file, put somewhere else.
    MoveInLine(Index, Index),
    InsertSnippet(Index, &'static str),
    DeleteChar(Index),
    InsertChar(Index, char),
    /// `len` characters from `at`, inserted again right after themselves.
    DuplicateChars(Index, usize),
    DeleteChars(Index, usize),
    Truncate(Index),
    /// The quoted text of a line containing `rule = "` (or `when`, `where`,
    /// `key`, a field mapping) replaced by CEL-like noise.
    ReplaceRule(Index, String),
    /// The value of a `key = value` line (not a table header) replaced by
    /// one of [`VALUES`], of the same kind if the flag is set.
    ReplaceValue(Index, bool, Index),
}

/// Values put in place of another on a `key = value` line.
const VALUES: [&str; 26] = [
    "\"\"",
    "\"x\"",
    "\"string\"",
    "\"double\"",
    "\"customer\"",
    "\"order\"",
    "\"args.zz\"",
    "\"result.zz\"",
    "\"args.order_id\"",
    "\"{args.zz}\"",
    "0",
    "-1",
    "1.5",
    "true",
    "[]",
    "[\"customer\"]",
    "[\"nope\"]",
    "[1, 2]",
    "{}",
    "{ id = \"string\" }",
    "{ type = \"string\" }",
    "1979-05-27",
    "\"result.customer_id\"",
    "\"args.amount > 1\"",
    "[\"order\", \"reverification\"]",
    "{ id = \"result.nope\" }",
];

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => any::<Index>().prop_map(Mutation::DeleteLine),
        1 => any::<Index>().prop_map(Mutation::DuplicateLine),
        1 => (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Mutation::SwapLines(a, b)),
        2 => (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Mutation::MoveInLine(a, b)),
        2 => (any::<Index>(), prop::sample::select(SNIPPETS.to_vec())).prop_map(|(a, s)| Mutation::InsertSnippet(a, s)),
        1 => any::<Index>().prop_map(Mutation::DeleteChar),
        1 => (any::<Index>(), prop::sample::select(CHARS.to_vec())).prop_map(|(a, c)| Mutation::InsertChar(a, c)),
        1 => (any::<Index>(), 1usize..40).prop_map(|(a, n)| Mutation::DuplicateChars(a, n)),
        1 => (any::<Index>(), 1usize..40).prop_map(|(a, n)| Mutation::DeleteChars(a, n)),
        1 => any::<Index>().prop_map(Mutation::Truncate),
        6 => (any::<Index>(), cel_noise()).prop_map(|(a, s)| Mutation::ReplaceRule(a, s)),
        6 => (any::<Index>(), any::<bool>(), any::<Index>()).prop_map(|(a, k, v)| Mutation::ReplaceValue(a, k, v)),
    ]
}

fn apply(text: &str, mutation: &Mutation) -> String {
    let mut lines: Vec<String> = text.split('\n').map(str::to_owned).collect();
    let mut chars: Vec<char> = text.chars().collect();
    let reference_lines: Vec<&str> = REFERENCE.split('\n').collect();
    match mutation {
        Mutation::DeleteLine(i) => {
            lines.remove(i.index(lines.len()));
        }
        Mutation::DuplicateLine(i) => {
            let at = i.index(lines.len());
            lines.insert(at, lines[at].clone());
        }
        Mutation::SwapLines(a, b) => {
            let (a, b) = (a.index(lines.len()), b.index(lines.len()));
            lines.swap(a, b);
        }
        Mutation::MoveInLine(from, to) => {
            let line = reference_lines[from.index(reference_lines.len())].to_owned();
            lines.insert(to.index(lines.len() + 1), line);
        }
        Mutation::InsertSnippet(at, snippet) => {
            lines.insert(at.index(lines.len() + 1), (*snippet).to_owned());
        }
        Mutation::DeleteChar(i) => {
            if !chars.is_empty() {
                chars.remove(i.index(chars.len()));
            }
            return chars.into_iter().collect();
        }
        Mutation::InsertChar(i, c) => {
            chars.insert(i.index(chars.len() + 1), *c);
            return chars.into_iter().collect();
        }
        Mutation::DuplicateChars(i, n) => {
            if !chars.is_empty() {
                let at = i.index(chars.len());
                let end = (at + n).min(chars.len());
                let copy: Vec<char> = chars[at..end].to_vec();
                chars.splice(end..end, copy);
            }
            return chars.into_iter().collect();
        }
        Mutation::DeleteChars(i, n) => {
            if !chars.is_empty() {
                let at = i.index(chars.len());
                let end = (at + n).min(chars.len());
                chars.drain(at..end);
            }
            return chars.into_iter().collect();
        }
        Mutation::Truncate(i) => {
            chars.truncate(i.index(chars.len() + 1));
            return chars.into_iter().collect();
        }
        Mutation::ReplaceValue(i, same_kind, value) => {
            let candidates: Vec<usize> = lines
                .iter()
                .enumerate()
                .filter(|(_, l)| !l.trim_start().starts_with(['[', '#']) && l.contains(" = "))
                .map(|(n, _)| n)
                .collect();
            if !candidates.is_empty() {
                let n = candidates[i.index(candidates.len())];
                if let Some((key, old)) = lines[n].split_once(" = ") {
                    // Half the time, a value of the same kind (string for
                    // string, list for list...), which gets past
                    // deserialisation to the workflow's own checks.
                    let kind = |v: &str| v.chars().next().map(|c| if c.is_ascii_digit() || c == '-' { '0' } else { c });
                    let same: Vec<&str> = VALUES.iter().copied().filter(|v| kind(v) == kind(old.trim())).collect();
                    let value = if *same_kind && !same.is_empty() {
                        same[value.index(same.len())]
                    } else {
                        VALUES[value.index(VALUES.len())]
                    };
                    lines[n] = format!("{key} = {value}");
                }
            }
        }
        Mutation::ReplaceRule(i, noise) => {
            let candidates: Vec<usize> = lines
                .iter()
                .enumerate()
                .filter(|(_, l)| {
                    ["rule = \"", "when = \"", "where = \"", "key = \"", "sum = \"", "by = \"", "= \"result."]
                        .iter()
                        .any(|k| l.contains(k))
                })
                .map(|(n, _)| n)
                .collect();
            if !candidates.is_empty() {
                let n = candidates[i.index(candidates.len())];
                let line = &lines[n];
                if let Some(start) = line.find("= \"") {
                    let open = start + 3;
                    if let Some(len) = line[open..].find('"') {
                        let escaped = noise.replace('\\', "\\\\").replace('"', "\\\"");
                        let replaced = format!("{}{}{}", &line[..open], escaped, &line[open + len..]);
                        lines[n] = replaced;
                    }
                }
            }
        }
    }
    lines.join("\n")
}

// ------------------------------------------------------------------ properties

/// Stack for the threads that compile: 2 MB, what an ordinary thread has.
/// Compile parses rules on a thread of its own with a large stack (the
/// `cel` crate's ANTLR parser recurses deeply, above all in a debug build),
/// so the caller's stack needs nothing special; running the properties on
/// a small one checks that.
const STACK: usize = 2 << 20;

/// Runs `f` on a thread with [`STACK`] bytes of stack.
fn on_small_stack(f: impl FnOnce() + Send + 'static) {
    let handle = std::thread::Builder::new().stack_size(STACK).spawn(f).expect("spawn the test thread");
    if let Err(panic) = handle.join() {
        std::panic::resume_unwind(panic);
    }
}

/// Runs `test` on `cases` inputs from the strategy `make` builds
/// (`PROPTEST_CASES` overrides), on a 2 MB stack.
fn run<S>(cases: u32, make: fn() -> S, test: fn(S::Value) -> Result<(), TestCaseError>)
where
    S: Strategy + 'static,
    S::Value: std::fmt::Debug,
{
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(cases);
    on_small_stack(move || {
        let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
            cases,
            source_file: Some(file!()),
            failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("proptest-regressions"))),
            ..ProptestConfig::default()
        });
        if let Err(error) = runner.run(&make(), test) {
            panic!("{error}");
        }
    });
}

#[test]
fn the_reference_workflow_compiles() {
    if let Err(problems) = compile(REFERENCE, FILE) {
        panic!("the reference workflow does not compile: {problems:?}");
    }
}

#[test]
fn arbitrary_strings_do_not_panic() {
    run(1_000, any::<String>, |text| check(&text));
}

#[test]
fn arbitrary_bytes_do_not_panic() {
    run(1_000, || prop::collection::vec(any::<u8>(), 0..512), |bytes| check(&String::from_utf8_lossy(&bytes)));
}

#[test]
fn toml_shaped_noise_does_not_panic() {
    run(
        1_000,
        || "([\\[\\]{}=\"'#.,\n a-z_0-9-]|workflow|facts|tools|rule|requires|checks|name|version|fields){0,120}",
        |text: String| check(&text),
    );
}

#[test]
fn mutated_reference_workflows_do_not_panic() {
    run(
        1_500,
        || prop::collection::vec(mutation(), 1..5),
        |mutations| {
            let mut text = REFERENCE.to_owned();
            for m in &mutations {
                text = apply(&text, m);
            }
            check(&text)
        },
    );
}

/// A rule that is a long chain of one operator (`1 + 1 + ... + 1`) passes
/// the `cel` parser's nesting limit but makes a left-deep tree, and nested
/// parentheses make the parser itself recurse. Before compile bounded both,
/// 20,000 terms aborted the process with a stack overflow, and so did a
/// dozen nested parentheses in a debug build on a 2 MB thread. Now each is
/// a problem reported against the rule, or compiles, on an ordinary thread.
#[test]
fn a_long_operator_chain_in_a_rule_is_a_problem_not_a_crash() {
    let workflow = |rule: String| {
        format!(
            "[workflow]\nname = \"w\"\nversion = 1\n\n[tools.t]\n\n[[tools.t.checks]]\nid = \"c\"\nrule = \"{rule}\"\nmessage = \"m\"\n"
        )
    };
    let chain = move |terms: usize| workflow(format!("args.a{} > 0", " + 1".repeat(terms)));
    let parens = move |depth: usize| workflow(format!("{}args.a{} > 0", "(".repeat(depth), ")".repeat(depth)));
    let problems_of = |text: String| -> Vec<String> {
        match compile(&text, FILE) {
            Ok(_) => Vec::new(),
            Err(problems) => problems.into_iter().map(|p| p.message).collect(),
        }
    };
    // On a 2 MB stack, as an ordinary server or test thread has.
    let handle = std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || {
            for text in [chain(20_000), chain(2_000), parens(90), parens(2_000)] {
                if let Err(error) = check(&text) {
                    panic!("{error}");
                }
            }
            [problems_of(chain(20_000)), problems_of(chain(2_000)), problems_of(chain(40)), problems_of(parens(40))]
        })
        .expect("spawn the test thread");
    let [huge, deep, ordinary_chain, ordinary_parens] = match handle.join() {
        Ok(outcome) => outcome,
        Err(panic) => std::panic::resume_unwind(panic),
    };
    assert!(huge.iter().any(|m| m.contains("over the limit of 8192 bytes")), "{huge:?}");
    assert!(deep.iter().any(|m| m.contains("nests deeper than")), "{deep:?}");
    assert!(ordinary_chain.is_empty(), "a 40-term chain is an ordinary rule: {ordinary_chain:?}");
    assert!(ordinary_parens.is_empty(), "40 nested parentheses compile: {ordinary_parens:?}");
}

/// The mutations must reach past the TOML parser, into the workflow checks
/// and the CEL lowering, or the property above says little about them.
#[test]
fn mutations_reach_every_stage_of_compile() {
    on_small_stack(|| {
        let mut runner = proptest::test_runner::TestRunner::deterministic();
        let strategy = prop::collection::vec(mutation(), 1..5);
        let (mut ok, mut malformed, mut rule, mut other) = (0, 0, 0, 0);
        for _ in 0..400 {
            let mutations = strategy.new_tree(&mut runner).expect("a case").current();
            let mut text = REFERENCE.to_owned();
            for m in &mutations {
                text = apply(&text, m);
            }
            match compile(&text, FILE) {
                Ok(_) => ok += 1,
                // The TOML parser or the typed deserialisation rejected it.
                Err(problems) if problems.iter().any(|p| p.message.starts_with("malformed workflow")) => malformed += 1,
                // The workflow's own checks: CEL, names, references.
                Err(problems) if problems.iter().any(|p| p.message.contains("CEL") || p.message.contains("rule")) => {
                    rule += 1;
                }
                Err(_) => other += 1,
            }
        }
        eprintln!(
            "mutated workflows: {ok} compile, {malformed} malformed (TOML syntax or shape), {rule} with rule problems, {other} with other problems"
        );
        assert!(
            ok >= 10 && malformed >= 100 && rule >= 40 && other >= 8,
            "{ok} compile, {malformed} malformed, {rule} rule problems, {other} other problems"
        );
    });
}
