//! The JSON the generated expressions read: `args` and `result` objects
//! whose fields usually have the shape the grammar expects of them.

use super::grammar::STRINGS;
use proptest::prelude::*;
use serde_json::{Value as Json, json};

fn json_scalar() -> impl Strategy<Value = Json> {
    prop_oneof![
        4 => (-5i64..=20).prop_map(|i| json!(i)),
        1 => prop::sample::select(vec![
            json!(i64::MAX), json!(i64::MIN), json!(9_007_199_254_740_993i64), json!(9_007_199_254_740_992i64),
            json!(u64::MAX), json!(800), json!(0),
        ]),
        3 => prop::sample::select(vec![0.5f64, 2.5, -1.5, 1.0, 100.0, 800.0, 1e300, 9.21e18, 0.1])
            .prop_map(|d| json!(d)),
        3 => prop::sample::select(STRINGS.to_vec()).prop_map(|s| json!(s)),
        1 => any::<bool>().prop_map(|b| json!(b)),
        1 => Just(Json::Null),
    ]
}

fn json_any() -> impl Strategy<Value = Json> {
    json_scalar().prop_recursive(2, 10, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Json::Array),
            prop::collection::btree_map(prop::sample::select(vec!["a", "b", "k", "x", "s"]), inner, 0..3)
                .prop_map(|m| Json::Object(m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())),
        ]
    })
}

/// A field that is usually of `typical` shape, sometimes anything, sometimes absent.
fn field(typical: BoxedStrategy<Json>) -> impl Strategy<Value = Option<Json>> {
    prop_oneof![
        14 => typical.prop_map(Some),
        1 => json_any().prop_map(Some),
        1 => Just(None),
    ]
}

fn ints() -> BoxedStrategy<Json> {
    prop_oneof![
        8 => (-5i64..=20).prop_map(|i| json!(i)),
        1 => prop::sample::select(vec![
            json!(i64::MAX), json!(i64::MIN), json!(9_007_199_254_740_993i64), json!(9_007_199_254_740_992i64), json!(u64::MAX),
        ]),
        1 => json_scalar(),
    ]
    .boxed()
}

fn doubles() -> BoxedStrategy<Json> {
    prop::sample::select(vec![0.5f64, 2.5, -1.5, 1.0, 100.0, 800.0, 0.1]).prop_map(|d| json!(d)).boxed()
}

fn strings() -> BoxedStrategy<Json> {
    prop::sample::select(STRINGS.to_vec()).prop_map(|s| json!(s)).boxed()
}

fn lists() -> BoxedStrategy<Json> {
    prop_oneof![
        6 => prop::collection::vec((-5i64..=20).prop_map(|i| json!(i)), 0..5).prop_map(Json::Array),
        1 => prop::collection::vec(ints(), 0..5).prop_map(Json::Array),
        1 => prop::collection::vec(strings(), 0..4).prop_map(Json::Array),
        1 => prop::collection::vec(json_scalar(), 0..5).prop_map(Json::Array),
    ]
    .boxed()
}

fn object(fields: Vec<(&'static str, Option<Json>)>) -> Json {
    Json::Object(fields.into_iter().filter_map(|(k, v)| v.map(|v| (k.to_owned(), v))).collect())
}

pub(super) fn args_json() -> impl Strategy<Value = Json> {
    let m = prop_oneof![
        3 => strings().prop_map(|k| json!({ "k": k })),
        1 => json_any(),
    ]
    .boxed();
    (
        field(ints()),
        field(doubles()),
        field(strings()),
        field(lists()),
        field(m),
        field(
            prop_oneof![
                1 => ints(),
                1 => prop::sample::select(vec![9_007_199_254_740_993i64, 9_007_199_254_740_992, -9_007_199_254_740_993])
                    .prop_map(|i| json!(i)),
            ]
            .boxed(),
        ),
    )
        .prop_map(|(a, b, s, items, m, n)| {
            object(vec![("a", a), ("b", b), ("s", s), ("items", items), ("m", m), ("n", n)])
        })
}

pub(super) fn result_json() -> impl Strategy<Value = Json> {
    prop_oneof![
        8 => (field(ints()), field(doubles()), field(strings()), field(lists()))
            .prop_map(|(x, y, s, items)| object(vec![("x", x), ("y", y), ("s", s), ("items", items)])),
        1 => json_any(),
    ]
}
