//! Fuzz target: any bytes, read as (lossy) UTF-8, given to `compile`.
//!
//! `compile` must never panic; a rejected file must come with at least one
//! problem, positioned inside the text.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Err(problems) = tollgate_core::compile(&text, "fuzz.toml") {
        assert!(!problems.is_empty(), "compile failed without a problem");
        let lines = text.split('\n').count();
        for problem in &problems {
            assert!(
                problem.line >= 1 && problem.column >= 1 && problem.line <= lines + 1,
                "problem outside the text ({lines} lines): {problem:?}"
            );
        }
    }
});
