//! `tollgate hook install | uninstall`: Tollgate's entries in a Claude Code
//! `settings.json`, merged in without touching anything else there, and
//! removed again by the same mark (`statusMessage`), leaving everything
//! else as it was. Each entry fails closed on Claude Code's side too
//! (`onFailure: "block"`), with a timeout above the hook's own deadline so
//! the hook's refusal, not the client's timeout, is what the model reads.
//!
//! Codex reads the same shape of entries from a `hooks.json` (without
//! `onFailure`, which it does not know, and without `PostToolUseFailure`,
//! which it does not send), but runs a user's or project's hook only once
//! it is trusted: its `config.toml` holds, under `hooks.state."<key>"`, the
//! `trusted_hash` of each hook it may run, and silently skips any other.
//! Installing is the user's trust in Tollgate's entries, so their trust is
//! written there too ([`codex_trust`], [`edit_codex_trust`]); nothing else
//! of the file changes.

use serde_json::{Map, Value as Json, json};
use sha2::Digest;
use std::path::Path;

/// The `statusMessage` that marks Tollgate's entries (and is shown in the
/// client's spinner while the hook runs).
pub const MARK: &str = "Tollgate: checking the workflow";

/// The events Tollgate's entries answer.
pub const EVENTS: [&str; 3] = ["PreToolUse", "PostToolUse", "PostToolUseFailure"];

/// The events Tollgate's entries answer in Codex (it sends no
/// `PostToolUseFailure`; a failed call is a `PostToolUse` there).
pub const CODEX_EVENTS: [&str; 2] = ["PreToolUse", "PostToolUse"];

/// What went wrong with a settings file.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file could not be read or written.
    #[error("{path}: {message}")]
    Io {
        /// The file.
        path: String,
        /// What happened.
        message: String,
    },
    /// The file is not a settings object Tollgate can merge into.
    #[error("{path}: {message}; it was left unchanged")]
    Shape {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
}

/// One hook entry: the command line and its timeout.
#[derive(Clone, Debug)]
pub struct Entry {
    /// The command the client runs (`/usr/bin/tollgate hook --workflow ...`).
    pub command: String,
    /// The client's timeout for it, in seconds (above the hook's deadline).
    pub timeout_seconds: u64,
    /// The tool names it runs for (a regular expression; `*` for all).
    pub matcher: String,
}

/// The settings with Tollgate's entries for every event in [`EVENTS`]
/// (earlier ones of Tollgate replaced, nothing else changed).
pub fn merged(settings: Json, entry: &Entry) -> Result<Json, String> {
    let hook = json!({
        "type": "command",
        "command": entry.command,
        "timeout": entry.timeout_seconds,
        "onFailure": "block",
        "statusMessage": MARK,
    });
    merged_with(settings, &EVENTS, &entry.matcher, &hook)
}

/// The environment variable an HTTP hook's token is read from (Claude Code
/// interpolates it into the `Authorization` header; the token itself is
/// never written into a settings file).
pub const TOKEN_ENV: &str = "TOLLGATE_TOKEN";

/// The settings with Tollgate's HTTP hook entries for every event in
/// [`EVENTS`]: Claude Code POSTs each event to `url` (a `tollgate serve`'s
/// `/v1/hooks/claude-code`) with the token of `$TOLLGATE_TOKEN`, and with
/// `onFailure: "block"` a server that cannot be reached, fails or answers
/// late blocks the call instead of letting it through.
pub fn merged_http(settings: Json, url: &str, timeout_seconds: u64, matcher: &str) -> Result<Json, String> {
    let hook = json!({
        "type": "http",
        "url": url,
        "headers": {"Authorization": format!("Bearer ${TOKEN_ENV}")},
        "allowedEnvVars": [TOKEN_ENV],
        "timeout": timeout_seconds,
        "onFailure": "block",
        "statusMessage": MARK,
    });
    merged_with(settings, &EVENTS, matcher, &hook)
}

/// A Codex `hooks.json` with Tollgate's entries for every event in
/// [`CODEX_EVENTS`] (earlier ones of Tollgate replaced, nothing else
/// changed). Codex knows no `onFailure`: it lets a call through whenever a
/// hook fails, which is why `tollgate hook` never fails but refuses.
pub fn merged_codex(hooks: Json, entry: &Entry) -> Result<Json, String> {
    let hook = json!({
        "type": "command",
        "command": entry.command,
        "timeout": entry.timeout_seconds,
        "statusMessage": MARK,
    });
    merged_with(hooks, &CODEX_EVENTS, &entry.matcher, &hook)
}

fn merged_with(settings: Json, events: &[&str], matcher: &str, hook: &Json) -> Result<Json, String> {
    let mut settings = removed(settings)?;
    let root = settings.as_object_mut().ok_or("the settings are not a JSON object")?;
    let hooks = root.entry("hooks").or_insert_with(|| Json::Object(Map::new()));
    let hooks = hooks.as_object_mut().ok_or("\"hooks\" is not an object")?;
    for event in events {
        let list = hooks.entry(*event).or_insert_with(|| Json::Array(Vec::new()));
        let list = list.as_array_mut().ok_or_else(|| format!("hooks.{event} is not a list"))?;
        list.push(json!({"matcher": matcher, "hooks": [hook]}));
    }
    Ok(settings)
}

/// The settings without Tollgate's entries: hooks marked with [`MARK`] are
/// removed, then matcher groups and event lists left empty by that, then
/// `hooks` if nothing is left in it. Everything else stays.
pub fn removed(mut settings: Json) -> Result<Json, String> {
    let root = settings.as_object_mut().ok_or("the settings are not a JSON object")?;
    let Some(hooks) = root.get_mut("hooks") else {
        return Ok(settings);
    };
    let hooks = hooks.as_object_mut().ok_or("\"hooks\" is not an object")?;
    for (_, list) in hooks.iter_mut() {
        let Some(groups) = list.as_array_mut() else { continue };
        groups.retain_mut(|group| match group.get_mut("hooks").and_then(Json::as_array_mut) {
            Some(inner) => {
                let before = inner.len();
                inner.retain(|hook| !ours(hook));
                // A group only Tollgate's goes; one that was empty already stays.
                !(before > 0 && inner.is_empty())
            }
            None => true,
        });
    }
    hooks.retain(|_, list| list.as_array().is_none_or(|groups| !groups.is_empty()));
    if hooks.is_empty() {
        root.remove("hooks");
    }
    Ok(settings)
}

/// Whether a hook entry is Tollgate's.
fn ours(hook: &Json) -> bool {
    hook.get("statusMessage").and_then(Json::as_str) == Some(MARK)
}

/// Codex's trust for Tollgate's entries in the `hooks.json` at `path`: for
/// each, the key Codex files its state under (`<path>:<event>:<group>:<hook>`,
/// by position) and the hash it must have (`sha256:` of the entry's
/// normalised identity as canonical JSON, as Codex computes it). Checked
/// against the real `codex` (0.171.0): with these, it runs the hooks without
/// `--dangerously-bypass-hook-trust`.
pub fn codex_trust(hooks: &Json, path: &Path) -> Vec<(String, String)> {
    let mut trust = Vec::new();
    for event in CODEX_EVENTS {
        let label = match event {
            "PreToolUse" => "pre_tool_use",
            _ => "post_tool_use",
        };
        let Some(groups) = hooks.get("hooks").and_then(|h| h.get(event)).and_then(Json::as_array) else { continue };
        for (group_index, group) in groups.iter().enumerate() {
            let Some(inner) = group.get("hooks").and_then(Json::as_array) else { continue };
            for (hook_index, hook) in inner.iter().enumerate() {
                if !ours(hook) {
                    continue;
                }
                let mut normalised = Map::new();
                normalised.insert("type".into(), json!("command"));
                normalised.insert("command".into(), hook.get("command").cloned().unwrap_or(Json::Null));
                let timeout = hook.get("timeout").and_then(Json::as_u64).unwrap_or(600).max(1);
                normalised.insert("timeout".into(), json!(timeout));
                normalised.insert("async".into(), json!(hook.get("async").and_then(Json::as_bool).unwrap_or(false)));
                normalised.insert("statusMessage".into(), json!(MARK));
                let mut identity = Map::new();
                identity.insert("event_name".into(), json!(label));
                if let Some(matcher) = group.get("matcher").filter(|m| !m.is_null()) {
                    identity.insert("matcher".into(), matcher.clone());
                }
                identity.insert("hooks".into(), Json::Array(vec![Json::Object(normalised)]));
                let canonical = canonical(&Json::Object(identity)).to_string();
                let digest = sha2::Sha256::digest(canonical.as_bytes());
                let hex: String = digest.iter().map(|byte| format!("{byte:02x}")).collect();
                let key = format!("{}:{label}:{group_index}:{hook_index}", path.display());
                trust.push((key, format!("sha256:{hex}")));
            }
        }
    }
    trust
}

/// JSON with every object's keys in order (whatever the map keeps).
fn canonical(value: &Json) -> Json {
    match value {
        Json::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            Json::Object(keys.into_iter().map(|k| (k.clone(), canonical(&map[k]))).collect())
        }
        Json::Array(items) => Json::Array(items.iter().map(canonical).collect()),
        other => other.clone(),
    }
}

/// Edits Codex's `config.toml` at `path`: the `hooks.state` entries named
/// in `remove` go (and tables left empty by that), each of `add` is set to
/// its `trusted_hash`. Comments, order and everything else stay.
pub fn edit_codex_trust(path: &Path, remove: &[String], add: &[(String, String)]) -> Result<(), Error> {
    let shown = path.display().to_string();
    let io = |message: String| Error::Io { path: shown.clone(), message };
    let shape = |message: String| Error::Shape { path: shown.clone(), message };
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(error) => return Err(io(error.to_string())),
    };
    let mut doc: toml_edit::DocumentMut = text.parse().map_err(|e| shape(format!("not TOML ({e})")))?;
    if let Some(hooks) = doc.get_mut("hooks") {
        let hooks = hooks.as_table_like_mut().ok_or_else(|| shape("\"hooks\" is not a table".into()))?;
        if let Some(state) = hooks.get_mut("state") {
            let state = state.as_table_like_mut().ok_or_else(|| shape("\"hooks.state\" is not a table".into()))?;
            for key in remove {
                state.remove(key);
            }
            if state.is_empty() {
                hooks.remove("state");
            }
        }
        if hooks.is_empty() {
            doc.remove("hooks");
        }
    }
    if !add.is_empty() {
        let hooks = doc.entry("hooks").or_insert_with(|| implicit_table().into());
        let hooks = hooks.as_table_like_mut().ok_or_else(|| shape("\"hooks\" is not a table".into()))?;
        let state = hooks.entry("state").or_insert(implicit_table().into());
        let state = state.as_table_like_mut().ok_or_else(|| shape("\"hooks.state\" is not a table".into()))?;
        for (key, hash) in add {
            let mut table = toml_edit::Table::new();
            table.insert("trusted_hash", toml_edit::value(hash.as_str()));
            state.insert(key, toml_edit::Item::Table(table));
        }
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| io(e.to_string()))?;
    }
    let temporary = path.with_extension("toml.tollgate-tmp");
    std::fs::write(&temporary, doc.to_string()).map_err(|e| io(e.to_string()))?;
    std::fs::rename(&temporary, path).map_err(|e| io(e.to_string()))
}

fn implicit_table() -> toml_edit::Table {
    let mut table = toml_edit::Table::new();
    table.set_implicit(true);
    table
}

/// Reads `path` (a missing file is empty settings), changes it with
/// `change` and writes it back (a temporary file renamed into place).
pub fn edit(path: &Path, change: impl FnOnce(Json) -> Result<Json, String>) -> Result<(), Error> {
    let shown = path.display().to_string();
    let io = |message: String| Error::Io { path: shown.clone(), message };
    let settings = match std::fs::read_to_string(path) {
        Ok(text) if text.trim().is_empty() => Json::Object(Map::new()),
        Ok(text) => serde_json::from_str(&text)
            .map_err(|error| Error::Shape { path: shown.clone(), message: format!("not JSON ({error})") })?,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Json::Object(Map::new()),
        Err(error) => return Err(io(error.to_string())),
    };
    let changed = change(settings).map_err(|message| Error::Shape { path: shown.clone(), message })?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| io(e.to_string()))?;
    }
    let mut text = serde_json::to_string_pretty(&changed).map_err(|e| io(e.to_string()))?;
    text.push('\n');
    let temporary = path.with_extension("json.tollgate-tmp");
    std::fs::write(&temporary, text).map_err(|e| io(e.to_string()))?;
    std::fs::rename(&temporary, path).map_err(|e| io(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn install_keeps_what_is_there_and_uninstall_removes_only_its_own() {
        let theirs = json!({
            "model": "opus",
            "permissions": {"allow": ["Bash(ls:*)"]},
            "hooks": {
                "PreToolUse": [{"matcher": "Bash", "hooks": [{"type": "command", "command": "./lint.sh"}]}],
                "Stop": [{"hooks": [{"type": "command", "command": "./notify.sh"}]}],
            },
        });
        let entry =
            Entry { command: "/bin/tollgate hook --workflow /w.toml".into(), timeout_seconds: 10, matcher: "*".into() };
        let installed = merged(theirs.clone(), &entry).unwrap();
        assert_eq!(installed["model"], "opus");
        assert_eq!(installed["hooks"]["PreToolUse"].as_array().unwrap().len(), 2);
        assert_eq!(installed["hooks"]["PreToolUse"][0], theirs["hooks"]["PreToolUse"][0]);
        let ours = &installed["hooks"]["PreToolUse"][1]["hooks"][0];
        assert_eq!((ours["onFailure"].as_str(), ours["timeout"].as_u64()), (Some("block"), Some(10)));
        for event in EVENTS {
            assert!(installed["hooks"][event].is_array(), "{event}");
        }
        // Installing again replaces, never duplicates.
        let again = merged(installed.clone(), &entry).unwrap();
        assert_eq!(again, installed);
        assert_eq!(removed(installed).unwrap(), theirs);
        assert_eq!(removed(merged(json!({}), &entry).unwrap()).unwrap(), json!({}));
        // Settings of a shape Tollgate cannot merge into are refused, not rewritten.
        assert!(merged(json!({"hooks": []}), &entry).is_err());
        assert!(merged(json!([]), &entry).is_err());
    }

    #[test]
    fn codex_entries_and_their_trust_are_codex_s() {
        let entry = Entry {
            command: "/work/wt-codex/target/debug/tollgate hook --workflow /work/wt-codex/examples/tau2-retail.toml \
                      --db /tmp/cx/tg.db --client codex --deadline-ms 5000"
                .into(),
            timeout_seconds: 10,
            matcher: "*".into(),
        };
        let theirs =
            json!({"hooks": {"PreToolUse": [{"matcher": "^Bash$", "hooks": [{"type": "command", "command": "x"}]}]}});
        let installed = merged_codex(theirs.clone(), &entry).unwrap();
        let ours = &installed["hooks"]["PreToolUse"][1]["hooks"][0];
        assert!(ours.get("onFailure").is_none());
        assert!(installed["hooks"].get("PostToolUseFailure").is_none());
        assert_eq!(removed(installed.clone()).unwrap(), theirs);
        // The hash Codex 0.171.0 itself reported (`hooks/list`) for this
        // entry, and ran it under: the user's hook keeps position 0.
        let trust = codex_trust(&installed, Path::new("/tmp/cx/home/.codex/hooks.json"));
        assert_eq!(
            trust,
            vec![
                (
                    "/tmp/cx/home/.codex/hooks.json:pre_tool_use:1:0".to_owned(),
                    "sha256:a924a110cfb8deebdcc9d1825a929dcf033088dc1fbe02da1ad8fdc63887d203".to_owned()
                ),
                (
                    "/tmp/cx/home/.codex/hooks.json:post_tool_use:0:0".to_owned(),
                    "sha256:43523edcbc8d1cbbebe4b4145ccde3bd2c695bc3b024a5426cd78ca3ad99749f".to_owned()
                ),
            ]
        );
    }

    #[test]
    fn codex_trust_is_written_and_removed_without_touching_the_rest() {
        let dir = std::env::temp_dir().join(format!("tollgate-codex-trust-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("config.toml");
        let theirs = "# mine\nmodel = \"o3\"\n\n[hooks.state.\"/their/hooks.json:stop:0:0\"]\nenabled = false\n";
        std::fs::write(&path, theirs).unwrap();
        let add = vec![("/h/hooks.json:pre_tool_use:0:0".to_owned(), "sha256:ab".to_owned())];
        edit_codex_trust(&path, &[], &add).unwrap();
        let written = std::fs::read_to_string(&path).unwrap();
        assert!(written.starts_with(theirs), "{written}");
        assert!(written.contains("[hooks.state.\"/h/hooks.json:pre_tool_use:0:0\"]\ntrusted_hash = \"sha256:ab\""));
        edit_codex_trust(&path, &[add[0].0.clone()], &[]).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), theirs);
        std::fs::write(&path, "hooks = 3\n").unwrap();
        assert!(edit_codex_trust(&path, &[], &add).is_err());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "hooks = 3\n");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
