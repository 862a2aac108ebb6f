//! Reading one hook event: standard input within a limit, then the event,
//! strictly enough that a tool event always has its tool, input and call id.

use crate::Error;
use std::io::Read;
use tollgate_protocol::hook::HookEvent;

/// What an event asks for, as far as the answer's shape goes: a refusal of
/// a tool call, a withheld output, or a note.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Not known yet (the input is unread or unreadable): answered as a tool
    /// call about to run, so nothing runs by accident.
    Unknown,
    /// `PreToolUse`.
    Pre,
    /// `PostToolUse`.
    Post,
    /// `PostToolUseFailure`.
    PostFailure,
    /// Session and subagent starts and ends.
    Lifecycle,
}

/// The kind of a read event.
pub(crate) fn kind_of(event: &HookEvent) -> Kind {
    match event {
        HookEvent::PreToolUse(_) => Kind::Pre,
        HookEvent::PostToolUse(_) => Kind::Post,
        HookEvent::PostToolUseFailure(_) => Kind::PostFailure,
        HookEvent::SessionStart(_)
        | HookEvent::SessionEnd(_)
        | HookEvent::SubagentStart(_)
        | HookEvent::SubagentStop(_) => Kind::Lifecycle,
    }
}

/// Reads standard input (at most `bytes_max`), as it is.
pub(crate) fn read(input: impl Read, bytes_max: usize) -> Result<Vec<u8>, Error> {
    let mut bytes = Vec::new();
    let limit = u64::try_from(bytes_max).unwrap_or(u64::MAX).saturating_add(1);
    input.take(limit).read_to_end(&mut bytes).map_err(|error| Error::Input(error.to_string()))?;
    if bytes.len() > bytes_max {
        return Err(Error::Input(format!("it is over the limit of {bytes_max} bytes")));
    }
    Ok(bytes)
}

/// Parses an event: JSON, naming itself, one of the events Tollgate answers.
pub(crate) fn parse(bytes: &[u8]) -> Result<HookEvent, Error> {
    let json: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|error| Error::Event(format!("malformed JSON ({error})")))?;
    let name = match json.get("hook_event_name") {
        Some(serde_json::Value::String(name)) => name.clone(),
        _ => return Err(Error::Event("it has no hook_event_name".into())),
    };
    const KNOWN: [&str; 7] = [
        "PreToolUse",
        "PostToolUse",
        "PostToolUseFailure",
        "SessionStart",
        "SessionEnd",
        "SubagentStart",
        "SubagentStop",
    ];
    if !KNOWN.contains(&name.as_str()) {
        let shown: String = name.chars().take(64).collect();
        return Err(Error::Event(format!("unknown event {shown:?}; Tollgate answers {}", KNOWN.join(", "))));
    }
    serde_json::from_value(json).map_err(|error| Error::Event(format!("a {name} event that does not decode ({error})")))
}
