//! Tools for the people who write workflows.
//!
//! `tollgate test`: tests written beside a workflow (`refunds.toml` →
//! `refunds.tests.toml`), each a scripted session whose steps say the verdict
//! and the rules they expect, run in memory by the core and reported like
//! `cargo test`; with coverage of which rules the tests made fire, which they
//! saw pass and which tools they never allowed. The file format is in
//! [`file`]; running is pure (no I/O): the binary reads the files.

pub mod coverage;
pub mod file;
pub mod run;

pub use coverage::{Coverage, Kind, RuleCoverage};
pub use file::{FileError, TestFile, parse};
pub use run::{FileResult, TestResult, run};

/// The report of one file's run, as `tollgate test` prints it:
/// a line per test, then each failure, then the count.
pub fn render(source: &str, workflow: &tollgate_core::Workflow, result: &FileResult) -> String {
    let mut out = format!(
        "running {} test{} from {source} ({} v{})\n",
        result.tests.len(),
        if result.tests.len() == 1 { "" } else { "s" },
        workflow.name(),
        workflow.version()
    );
    for test in &result.tests {
        let status = if test.failure.is_some() { "FAILED" } else { "ok" };
        out.push_str(&format!("test {} ... {status}\n", test.name));
    }
    let failures: Vec<&TestResult> = result.tests.iter().filter(|t| t.failure.is_some()).collect();
    if !failures.is_empty() {
        out.push_str("\nfailures:\n");
        for test in &failures {
            out.push_str(&format!("\n---- {} ----\n{}\n", test.name, test.failure.as_deref().unwrap_or("")));
        }
    }
    out.push_str(&format!(
        "\ntest result: {}. {} passed; {} failed\n",
        if failures.is_empty() { "ok" } else { "FAILED" },
        result.passed(),
        result.failed()
    ));
    out
}

#[cfg(test)]
mod tests;
