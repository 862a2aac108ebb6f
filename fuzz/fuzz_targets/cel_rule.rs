//! Fuzz target: any UTF-8 text as one CEL rule, lowered and evaluated by
//! `tollgate_core::evaluate_standalone` against fixed `args` and `result`.
//!
//! Parsing, lowering and evaluation must never panic, whatever the rule;
//! errors are fine.

#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::LazyLock;

static ARGS: LazyLock<serde_json::Value> = LazyLock::new(|| {
    serde_json::json!({
        "order_id": "#W1",
        "amount": 120.5,
        "count": 3,
        "big": 9_007_199_254_740_993i64,
        "huge": u64::MAX,
        "reason": "Damaged in transit",
        "tags": ["a", "b", 1, 2.5, null, true],
        "nested": { "k": "v", "n": { "deep": [1, [2, [3]]] } },
        "nothing": null,
    })
});

static RESULT: LazyLock<serde_json::Value> = LazyLock::new(|| {
    serde_json::json!({
        "verified": true,
        "customer_id": "c_42",
        "total": 800,
        "status": "delivered",
        "items": [{ "sku": "x", "price": 10 }, { "sku": "y", "price": 2.5 }],
    })
});

fuzz_target!(|data: &[u8]| {
    if let Ok(source) = std::str::from_utf8(data) {
        if let Ok(value) = tollgate_core::evaluate_standalone(source, &ARGS, &RESULT) {
            // Converting the result back must not panic either.
            let _ = value.to_json();
        }
    }
});
