//! Delta debugging: the shortest sequence that still breaks the same
//! invariant, by dropping calls (each with its results) and then single steps.

use tollgate_protocol::script::Step;

/// Steps grouped by call: a call and every result for its id form one unit.
fn units(steps: &[Step]) -> Vec<Vec<Step>> {
    let mut units: Vec<Vec<Step>> = Vec::new();
    let mut ids: Vec<String> = Vec::new();
    for step in steps {
        let id = match step {
            Step::Call(call) => call.id.as_str(),
            Step::Result { call, .. } => call.as_str(),
        };
        match ids.iter().position(|known| known == id) {
            Some(index) => {
                if let Some(unit) = units.get_mut(index) {
                    unit.push(step.clone());
                }
            }
            None => {
                ids.push(id.to_owned());
                units.push(vec![step.clone()]);
            }
        }
    }
    units
}

/// Keeps the relative order of steps, dropping the units not kept.
fn flatten(steps: &[Step], kept_ids: &[String]) -> Vec<Step> {
    steps
        .iter()
        .filter(|step| {
            let id = match step {
                Step::Call(call) => call.id.as_str(),
                Step::Result { call, .. } => call.as_str(),
            };
            kept_ids.iter().any(|k| k == id)
        })
        .cloned()
        .collect()
}

fn unit_id(unit: &[Step]) -> String {
    match unit.first() {
        Some(Step::Call(call)) => call.id.to_string(),
        Some(Step::Result { call, .. }) => call.to_string(),
        None => String::new(),
    }
}

/// The smallest sequence found for which `still_fails` holds (ddmin over
/// calls, then one step at a time). `steps` must fail.
pub fn minimise(steps: &[Step], still_fails: &mut dyn FnMut(&[Step]) -> bool) -> Vec<Step> {
    let mut current = steps.to_vec();
    let mut ids: Vec<String> = units(&current).iter().map(|u| unit_id(u)).collect();
    let mut granularity = 2usize;
    while ids.len() >= 2 {
        let chunk = ids.len().div_ceil(granularity);
        let mut reduced = false;
        let mut start = 0;
        while start < ids.len() {
            let end = (start + chunk).min(ids.len());
            let complement: Vec<String> =
                ids.iter().enumerate().filter(|(i, _)| *i < start || *i >= end).map(|(_, id)| id.clone()).collect();
            let candidate = flatten(&current, &complement);
            if !complement.is_empty() && still_fails(&candidate) {
                current = candidate;
                ids = complement;
                granularity = granularity.saturating_sub(1).max(2);
                reduced = true;
                break;
            }
            start = end;
        }
        if !reduced {
            if granularity >= ids.len() {
                break;
            }
            granularity = (granularity * 2).min(ids.len());
        }
    }
    // Then single steps (a result whose absence still fails, a duplicate).
    let mut index = 0;
    while index < current.len() {
        let mut candidate = current.clone();
        candidate.remove(index);
        if still_fails(&candidate) {
            current = candidate;
        } else {
            index += 1;
        }
    }
    current
}

#[cfg(test)]
mod tests {
    use super::minimise;
    use serde_json::json;
    use tollgate_core::ToolCall;
    use tollgate_protocol::script::Step;

    #[test]
    fn keeps_only_what_the_failure_needs() {
        let steps: Vec<Step> =
            (0..20).map(|i| Step::Call(ToolCall::new(format!("c{i}"), "t", json!({"n": i})))).collect();
        let needs = |steps: &[Step]| {
            let has = |n: i64| steps.iter().any(|s| matches!(s, Step::Call(c) if c.args["n"] == json!(n)));
            has(3) && has(17)
        };
        let minimal = minimise(&steps, &mut |s| needs(s));
        assert_eq!(minimal.len(), 2);
    }
}
