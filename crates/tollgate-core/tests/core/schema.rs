//! The workflow file's JSON Schema (`tollgate schema`, committed as
//! `schema/workflow.schema.json` for editors): every example workflow is
//! valid under it, the committed copy is the current one, and the mistakes
//! an editor should flag as they are typed are flagged, at their place.

use serde_json::Value;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn toml_to_json(value: toml::Value) -> Value {
    match value {
        toml::Value::String(s) => Value::String(s),
        toml::Value::Integer(i) => Value::from(i),
        toml::Value::Float(f) => serde_json::Number::from_f64(f).map(Value::Number).unwrap_or(Value::Null),
        toml::Value::Boolean(b) => Value::Bool(b),
        toml::Value::Datetime(d) => Value::String(d.to_string()),
        toml::Value::Array(items) => Value::Array(items.into_iter().map(toml_to_json).collect()),
        toml::Value::Table(table) => Value::Object(table.into_iter().map(|(k, v)| (k, toml_to_json(v))).collect()),
    }
}

/// The schema's errors for a workflow text, each as `path: message`.
fn errors(text: &str) -> Vec<String> {
    let schema = tollgate_core::workflow_schema();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let instance = toml_to_json(toml::from_str(text).unwrap());
    validator.iter_errors(&instance).map(|e| format!("{}: {e}", e.instance_path())).collect()
}

fn examples() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("examples"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_str().unwrap();
            name.ends_with(".toml") && !name.ends_with(".tests.toml")
        })
        .collect();
    files.sort();
    files
}

#[test]
fn the_schema_is_a_valid_json_schema_and_the_committed_copy_is_current() {
    let schema = tollgate_core::workflow_schema();
    jsonschema::meta::validate(&schema).unwrap();
    let committed: Value =
        serde_json::from_str(&std::fs::read_to_string(root().join("schema/workflow.schema.json")).unwrap()).unwrap();
    assert!(
        committed == schema,
        "schema/workflow.schema.json is stale: run `tollgate schema > schema/workflow.schema.json`"
    );
}

#[test]
fn every_example_workflow_is_valid_under_the_schema_and_names_it() {
    let files = examples();
    assert!(files.len() >= 5, "{files:?}");
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        assert_eq!(errors(&text), Vec::<String>::new(), "{}", file.display());
        assert!(
            text.starts_with("#:schema ../schema/workflow.schema.json\n"),
            "{} does not point editors at the schema on its first line",
            file.display()
        );
        // The schema admits nothing the compiler refuses by shape.
        tollgate_core::compile(&text, &file.display().to_string()).unwrap();
    }
}

#[test]
fn mistakes_are_flagged_at_their_place() {
    let base = std::fs::read_to_string(root().join("examples/support-refunds.toml")).unwrap();
    let cases = [
        // A misspelt key in a check.
        (
            "rule = \"order.status in ['delivered', 'returned']\"",
            "rul = \"order.status in ['delivered', 'returned']\"",
            "/tools/process_refund/checks/0",
        ),
        // A version that is not a number.
        ("version = 1\n", "version = \"1\"\n", "/workflow/version"),
        // A gate that is neither a fact name nor a table.
        (
            "requires = [\"customer\"]\nargs = { type = \"object\", required = [\"street\"",
            "requires = [3]\nargs = { type = \"object\", required = [\"street\"",
            "/tools/update_address/requires/0",
        ),
        // A field type the compiler does not know.
        (
            "fields = { id = \"string\", email = \"string\", tier = \"string\" }",
            "fields = { id = \"string\", email = \"text\", tier = \"string\" }",
            "/facts/customer/fields/email",
        ),
        // A side_effect written as text.
        (
            "side_effect = true\nargs = { type = \"object\", required = [\"order_id\", \"amount\"]",
            "side_effect = \"yes\"\nargs = { type = \"object\", required = [\"order_id\", \"amount\"]",
            "/tools/process_refund/side_effect",
        ),
    ];
    for (from, to, place) in cases {
        assert!(base.contains(from), "the example no longer has {from:?}");
        let broken = base.replacen(from, to, 1);
        let found = errors(&broken);
        assert!(found.iter().any(|e| e.starts_with(place)), "{to:?}: expected an error at {place}, got {found:?}");
        // And the compiler refuses it too: the schema flags what validate would.
        assert!(tollgate_core::compile(&broken, "broken.toml").is_err(), "{to:?} compiles");
    }
}
