//! Static analysis of the prerequisite graph: which tools can ever run, which
//! prerequisites form cycles, and, for each guarded tool, the facts that
//! every path of calls leading to it must establish first.

use super::{FactDecl, Tool};
use std::collections::BTreeSet;

/// The result of the prerequisite analysis.
#[derive(Debug, Default)]
pub struct Analysis {
    guarded: Vec<GuardedTool>,
    problems: Vec<AnalysisProblem>,
}

/// A tool with at least one gate, and what any path to it establishes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuardedTool {
    /// The tool's name.
    pub tool: String,
    /// Facts its gates name directly.
    pub requires: Vec<String>,
    /// Facts every sequence of calls that reaches the tool must establish
    /// (its gates, their prerequisites, and so on), sorted.
    pub must_establish: Vec<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct AnalysisProblem {
    pub tool: String,
    pub message: String,
}

impl Analysis {
    /// Guarded tools in name order.
    pub fn guarded(&self) -> &[GuardedTool] {
        &self.guarded
    }

    pub(crate) fn problems(&self) -> &[AnalysisProblem] {
        &self.problems
    }
}

pub(crate) fn analyse(facts: &[FactDecl], tools: &[Tool]) -> Analysis {
    let requires: Vec<BTreeSet<usize>> = tools.iter().map(|t| t.gates.iter().map(|g| g.fact.0).collect()).collect();
    let reachable = reachable_facts(facts, tools, &requires);
    let mut problems = Vec::new();
    for (tool, needs) in tools.iter().zip(&requires) {
        for &fact in needs {
            if reachable.contains(&fact) {
                continue;
            }
            let name = fact_name(facts, fact);
            let establishers = facts.get(fact).map_or(0, |f| f.established_by.len());
            let message = if establishers == 0 {
                format!(
                    "tool '{}' requires fact '{name}', which no tool establishes: the gate can never be satisfied",
                    tool.name
                )
            } else if let Some(cycle) = find_cycle(facts, tools, &requires, fact) {
                format!("tool '{}' can never run: prerequisite cycle {cycle}", tool.name)
            } else {
                format!(
                    "tool '{}' can never run: fact '{name}' is established only by tools that can never run",
                    tool.name
                )
            };
            problems.push(AnalysisProblem { tool: tool.name.clone(), message });
        }
    }
    let must = must_establish(facts, &requires);
    let guarded = tools
        .iter()
        .zip(&requires)
        .zip(&must)
        .filter(|((_, needs), _)| !needs.is_empty())
        .map(|((tool, _), must)| (tool, must))
        .map(|(tool, must)| GuardedTool {
            tool: tool.name.clone(),
            requires: tool.gates.iter().map(|g| g.text.clone()).collect(),
            must_establish: {
                let mut names: Vec<String> = must.iter().map(|&f| fact_name(facts, f)).collect();
                names.sort();
                names
            },
        })
        .collect();
    Analysis { guarded, problems }
}

fn fact_name(facts: &[FactDecl], fact: usize) -> String {
    facts.get(fact).map_or_else(|| format!("#{fact}"), |f| f.name.to_string())
}

fn reachable_facts(facts: &[FactDecl], tools: &[Tool], requires: &[BTreeSet<usize>]) -> BTreeSet<usize> {
    let mut reachable = BTreeSet::new();
    loop {
        let before = reachable.len();
        for (tool, needs) in tools.iter().zip(requires) {
            if needs.is_subset(&reachable) {
                reachable.extend(tool.establishes.iter().map(|m| m.fact.0));
            }
        }
        if reachable.len() == before || reachable.len() >= facts.len() {
            return reachable;
        }
    }
}

/// A cycle through `start` in "fact is established by a tool that needs
/// fact" edges, written `order <- lookup_order needs order`.
fn find_cycle(facts: &[FactDecl], tools: &[Tool], requires: &[BTreeSet<usize>], start: usize) -> Option<String> {
    let mut path: Vec<(usize, usize)> = Vec::new();
    let mut seen = BTreeSet::new();
    if walk(facts, requires, start, start, &mut path, &mut seen) {
        let steps: Vec<String> = path
            .iter()
            .map(|&(tool, need)| {
                format!("{} needs {}", tools.get(tool).map_or("?", |t| t.name.as_str()), fact_name(facts, need))
            })
            .collect();
        return Some(format!("{} <- {}", fact_name(facts, start), steps.join(" <- ")));
    }
    None
}

fn walk(
    facts: &[FactDecl],
    requires: &[BTreeSet<usize>],
    start: usize,
    fact: usize,
    path: &mut Vec<(usize, usize)>,
    seen: &mut BTreeSet<usize>,
) -> bool {
    if !seen.insert(fact) {
        return false;
    }
    let Some(decl) = facts.get(fact) else { return false };
    for tool in &decl.established_by {
        for &need in requires.get(tool.0).into_iter().flatten() {
            path.push((tool.0, need));
            if need == start || walk(facts, requires, start, need, path, seen) {
                return true;
            }
            path.pop();
        }
    }
    false
}

/// The greatest fixpoint of must(t) = gates(t) ∪ ⋃_{f ∈ gates(t)} ⋂_{e
/// establishes f} must(e): starting from "everything" and shrinking, it is
/// the set of facts on every path to `t`.
fn must_establish(facts: &[FactDecl], requires: &[BTreeSet<usize>]) -> Vec<BTreeSet<usize>> {
    let all: BTreeSet<usize> = (0..facts.len()).collect();
    let mut must: Vec<BTreeSet<usize>> =
        requires.iter().map(|needs| if needs.is_empty() { BTreeSet::new() } else { all.clone() }).collect();
    loop {
        let mut changed = false;
        for (index, needs) in requires.iter().enumerate() {
            let mut next = needs.clone();
            for &fact in needs {
                let establishers = facts.get(fact).map(|f| f.established_by.as_slice()).unwrap_or_default();
                let mut common: Option<BTreeSet<usize>> = None;
                for tool in establishers {
                    let theirs = must.get(tool.0).cloned().unwrap_or_default();
                    common = Some(match common {
                        None => theirs,
                        Some(acc) => acc.intersection(&theirs).copied().collect(),
                    });
                }
                next.extend(common.unwrap_or_default());
            }
            if let Some(slot) = must.get_mut(index)
                && *slot != next
            {
                *slot = next;
                changed = true;
            }
        }
        if !changed {
            return must;
        }
    }
}
