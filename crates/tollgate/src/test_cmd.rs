//! `tollgate test`: the tests written beside workflows, run and reported
//! like `cargo test`, with `--coverage` of the rules they made fire.

use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use tollgate_author::Coverage;

pub struct Options {
    pub paths: Vec<PathBuf>,
    pub coverage: bool,
    pub require_coverage: bool,
    pub filter: Option<String>,
}

/// A test file and the workflow it tests.
struct Pair {
    tests: PathBuf,
    workflow: PathBuf,
}

const SUFFIX: &str = ".tests.toml";

pub fn run(options: &Options) -> Result<ExitCode> {
    let paths = if options.paths.is_empty() { vec![PathBuf::from(".")] } else { options.paths.clone() };
    let mut pairs = Vec::new();
    for path in &paths {
        pairs.extend(find(path)?);
    }
    let mut failed = 0;
    let mut passed = 0;
    let mut incomplete = Vec::new();
    // One coverage per workflow, over every test file of it.
    let mut coverages: Vec<(PathBuf, tollgate_core::Workflow, Coverage)> = Vec::new();
    for pair in &pairs {
        let text = crate::input::read(&pair.tests, "the test file", crate::input::SCRIPT_BYTES_MAX)?;
        let file = tollgate_author::parse(&text).with_context(|| format!("{}", pair.tests.display()))?;
        let workflow_path = match &file.workflow {
            Some(named) => pair.tests.parent().unwrap_or(Path::new(".")).join(named),
            None => pair.workflow.clone(),
        };
        let index = match coverages.iter().position(|(path, _, _)| *path == workflow_path) {
            Some(index) => index,
            None => {
                let (_, workflow) = crate::validate::load(&workflow_path)
                    .with_context(|| format!("the workflow of {}", pair.tests.display()))?;
                let coverage = Coverage::new(&workflow);
                coverages.push((workflow_path.clone(), workflow, coverage));
                coverages.len() - 1
            }
        };
        let Some((_, workflow, coverage)) = coverages.get_mut(index) else { bail!("internal: no coverage {index}") };
        let result = tollgate_author::run(workflow, &file, options.filter.as_deref(), coverage);
        out!("{}", tollgate_author::render(&pair.tests.display().to_string(), workflow, &result));
        passed += result.passed();
        failed += result.failed();
    }
    if options.coverage || options.require_coverage {
        for (path, workflow, coverage) in &coverages {
            out!("{}: {}", path.display(), coverage.render(workflow));
            if !coverage.complete() {
                incomplete.push(path.display().to_string());
            }
        }
    }
    if pairs.len() > 1 {
        out!("all files: {passed} passed; {failed} failed");
    }
    if failed > 0 {
        return Ok(ExitCode::FAILURE);
    }
    if options.require_coverage && !incomplete.is_empty() {
        out!("rules no test made fire, in: {}", incomplete.join(", "));
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// The test files a path names: a workflow (its `.tests.toml` beside it), a
/// test file, or a directory (every test file in it).
fn find(path: &Path) -> Result<Vec<Pair>> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    if path.is_dir() {
        let mut pairs = Vec::new();
        let entries =
            std::fs::read_dir(path).with_context(|| format!("cannot read the directory {}", path.display()))?;
        let mut files: Vec<PathBuf> = entries
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.ends_with(SUFFIX)))
            .collect();
        files.sort();
        for tests in files {
            pairs.push(Pair { workflow: workflow_of(&tests), tests });
        }
        if pairs.is_empty() {
            bail!("no test files (*{SUFFIX}) in {}", path.display());
        }
        return Ok(pairs);
    }
    if name.ends_with(SUFFIX) {
        return Ok(vec![Pair { workflow: workflow_of(path), tests: path.to_path_buf() }]);
    }
    let tests = path.with_file_name(format!("{}{SUFFIX}", name.strip_suffix(".toml").unwrap_or(name)));
    if !tests.is_file() {
        bail!("{} has no tests beside it: write them in {}", path.display(), tests.display());
    }
    Ok(vec![Pair { tests, workflow: path.to_path_buf() }])
}

/// `refunds.tests.toml` → `refunds.toml`.
fn workflow_of(tests: &Path) -> PathBuf {
    let name = tests.file_name().and_then(|n| n.to_str()).unwrap_or("");
    tests.with_file_name(format!("{}.toml", name.strip_suffix(SUFFIX).unwrap_or(name)))
}
