//! Rule coverage: which of a workflow's gates, checks, escalations and
//! result checks the tests made fire, which they saw pass, and which tools
//! were never allowed. A rule no test makes fire is a rule nobody has seen
//! work; a tool no test allows is a tool whose rules may block everything.

use tollgate_core::{Decision, Reason, Workflow};

/// The kind of a rule, as the workflow file spells its table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// `requires`: a prerequisite fact.
    Gate,
    /// `checks`.
    Check,
    /// `escalate`.
    Escalation,
    /// `result_checks`.
    ResultCheck,
}

impl Kind {
    /// The word the report prints.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Gate => "gate",
            Kind::Check => "check",
            Kind::Escalation => "escalation",
            Kind::ResultCheck => "result check",
        }
    }
}

/// One rule of one tool, and what the tests did with it.
#[derive(Clone, Debug)]
pub struct RuleCoverage {
    /// The tool the rule guards.
    pub tool: String,
    /// Its kind.
    pub kind: Kind,
    /// Its id.
    pub id: String,
    /// Calls (or results) it blocked, escalated or withheld.
    pub fired: usize,
    /// Calls (or results) that got past it.
    pub passed: usize,
}

/// The coverage of one workflow over any number of test runs.
#[derive(Clone, Debug)]
pub struct Coverage {
    /// Every rule, in the workflow's order.
    pub rules: Vec<RuleCoverage>,
    /// Every tool and how many of its calls were allowed.
    pub tools: Vec<(String, usize)>,
}

impl Coverage {
    /// Nothing seen yet.
    pub fn new(workflow: &Workflow) -> Coverage {
        let mut rules = Vec::new();
        let mut tools = Vec::new();
        for tool in workflow.tools() {
            let name = tool.name().to_owned();
            let mut add = |kind: Kind, id: &str| {
                rules.push(RuleCoverage { tool: name.clone(), kind, id: id.to_owned(), fired: 0, passed: 0 })
            };
            tool.gates().iter().for_each(|g| add(Kind::Gate, g.id()));
            tool.checks().iter().for_each(|c| add(Kind::Check, c.id()));
            tool.escalations().iter().for_each(|e| add(Kind::Escalation, e.id()));
            tool.result_checks().iter().for_each(|c| add(Kind::ResultCheck, c.id()));
            tools.push((name, 0));
        }
        Coverage { rules, tools }
    }

    /// A call to `tool` was decided.
    pub fn decided(&mut self, tool: &str, decision: &Decision) {
        match decision {
            Decision::Allow(_) => {
                if let Some((_, allowed)) = self.tools.iter_mut().find(|(name, _)| name == tool) {
                    *allowed += 1;
                }
                for rule in self.rules.iter_mut().filter(|r| r.tool == tool && r.kind != Kind::ResultCheck) {
                    rule.passed += 1;
                }
            }
            Decision::Block(_) | Decision::Escalate(_) => self.fired(tool, decision.reasons(), false),
        }
    }

    /// A result of `tool` was recorded; `withheld` are the result checks
    /// that withheld it (none: it passed them all).
    pub fn result(&mut self, tool: &str, withheld: &[Reason]) {
        if withheld.is_empty() {
            for rule in self.rules.iter_mut().filter(|r| r.tool == tool && r.kind == Kind::ResultCheck) {
                rule.passed += 1;
            }
        } else {
            self.fired(tool, withheld, true);
        }
    }

    fn fired(&mut self, tool: &str, reasons: &[Reason], results: bool) {
        for reason in reasons {
            for rule in self
                .rules
                .iter_mut()
                .filter(|r| r.tool == tool && r.id == reason.rule_id && (r.kind == Kind::ResultCheck) == results)
            {
                rule.fired += 1;
            }
        }
    }

    /// Rules no test made fire.
    pub fn never_fired(&self) -> impl Iterator<Item = &RuleCoverage> {
        self.rules.iter().filter(|r| r.fired == 0)
    }

    /// Rules no call or result ever got past.
    pub fn never_passed(&self) -> impl Iterator<Item = &RuleCoverage> {
        self.rules.iter().filter(|r| r.passed == 0)
    }

    /// Tools no test call was allowed to run.
    pub fn never_allowed(&self) -> impl Iterator<Item = &str> {
        self.tools.iter().filter(|(_, allowed)| *allowed == 0).map(|(name, _)| name.as_str())
    }

    /// Whether every rule fired at least once.
    pub fn complete(&self) -> bool {
        self.never_fired().next().is_none()
    }

    /// The report, as `tollgate test --coverage` prints it.
    pub fn render(&self, workflow: &Workflow) -> String {
        let fired = self.rules.iter().filter(|r| r.fired > 0).count();
        let mut out = format!(
            "coverage of {} v{}: {fired} of {} rules fired",
            workflow.name(),
            workflow.version(),
            self.rules.len()
        );
        if !self.rules.is_empty() {
            out.push_str(&format!(" ({}%)", fired * 100 / self.rules.len()));
        }
        out.push('\n');
        let width = self.rules.iter().map(|r| r.tool.len()).max().unwrap_or(0);
        let list = |out: &mut String, title: &str, rules: Vec<&RuleCoverage>| {
            if rules.is_empty() {
                return;
            }
            out.push_str(&format!("  {title}:\n"));
            for rule in rules {
                out.push_str(&format!("    {:<width$}  {:<12}  {}\n", rule.tool, rule.kind.as_str(), rule.id));
            }
        };
        list(&mut out, "never fired (no test was refused by it)", self.never_fired().collect());
        list(&mut out, "never passed (no test got past it)", self.never_passed().collect());
        let tools: Vec<&str> = self.never_allowed().collect();
        if !tools.is_empty() {
            out.push_str(&format!("  tools never allowed: {}\n", tools.join(", ")));
        }
        out
    }
}
