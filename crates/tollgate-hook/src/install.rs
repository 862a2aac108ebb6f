//! `tollgate hook install | uninstall`: Tollgate's entries in a Claude Code
//! `settings.json`, merged in without touching anything else there, and
//! removed again by the same mark (`statusMessage`), leaving everything
//! else as it was. Each entry fails closed on Claude Code's side too
//! (`onFailure: "block"`), with a timeout above the hook's own deadline so
//! the hook's refusal, not the client's timeout, is what the model reads.

use serde_json::{Map, Value as Json, json};
use std::path::Path;

/// The `statusMessage` that marks Tollgate's entries (and is shown in the
/// client's spinner while the hook runs).
pub const MARK: &str = "Tollgate: checking the workflow";

/// The events Tollgate's entries answer.
pub const EVENTS: [&str; 3] = ["PreToolUse", "PostToolUse", "PostToolUseFailure"];

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
}

/// The settings with Tollgate's entries for every event in [`EVENTS`]
/// (earlier ones of Tollgate replaced, nothing else changed).
pub fn merged(settings: Json, entry: &Entry) -> Result<Json, String> {
    let mut settings = removed(settings)?;
    let root = settings.as_object_mut().ok_or("the settings are not a JSON object")?;
    let hooks = root.entry("hooks").or_insert_with(|| Json::Object(Map::new()));
    let hooks = hooks.as_object_mut().ok_or("\"hooks\" is not an object")?;
    for event in EVENTS {
        let list = hooks.entry(event).or_insert_with(|| Json::Array(Vec::new()));
        let list = list.as_array_mut().ok_or_else(|| format!("hooks.{event} is not a list"))?;
        list.push(json!({
            "matcher": "*",
            "hooks": [{
                "type": "command",
                "command": entry.command,
                "timeout": entry.timeout_seconds,
                "onFailure": "block",
                "statusMessage": MARK,
            }],
        }));
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
    let ours = |hook: &Json| hook.get("statusMessage").and_then(Json::as_str) == Some(MARK);
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
        let entry = Entry { command: "/bin/tollgate hook --workflow /w.toml".into(), timeout_seconds: 10 };
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
}
