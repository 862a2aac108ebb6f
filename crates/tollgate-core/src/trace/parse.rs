//! Reading traces: format detection and the τ trace lines. Chat transcripts
//! are in `chat.rs`.
//!
//! Detection: a text whose first non-blank line is a whole JSON value is
//! JSON Lines, one session per line; otherwise the whole text is one JSON
//! document. Each session is then recognised by its shape: an object with
//! `events` is a τ trace; an object with `messages`, or an array, is a chat
//! transcript, OpenAI or Anthropic by its messages (see `chat.rs`).

use super::{Expect, Format, Recorded, RecordedCall, SessionTime, Trace, TraceEvent, chat};
use serde_json::{Map, Value as Json};
use std::fmt;

/// Why a text is not a trace file: the line (when the error has one) and
/// what is wrong there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    /// The 1-based line, when known.
    pub line: Option<usize>,
    /// What is wrong, in a sentence.
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "line {line}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for ParseError {}

/// Reads every trace in `text`. `name` (usually the file's name) makes the
/// ids of sessions that carry none: `name:LINE` for JSON Lines, `name` for a
/// whole document. Nothing is returned unless everything reads.
pub fn parse(text: &str, name: &str) -> Result<Vec<Trace>, ParseError> {
    let first = text.lines().enumerate().find(|(_, line)| !line.trim().is_empty());
    let Some((first_index, first_line)) = first else {
        return Err(ParseError { line: None, message: "the file holds no trace".into() });
    };
    if let Ok(Json::Object(first)) = serde_json::from_str::<Json>(first_line)
        && is_claude_code_entry(&first)
    {
        return claude_code(text, name);
    }
    if serde_json::from_str::<Json>(first_line).is_err() {
        // Not JSON Lines: one document over several lines.
        let value: Json = serde_json::from_str(text)
            .map_err(|error| ParseError { line: Some(error.line()), message: format!("malformed JSON: {error}") })?;
        return session(value, name.to_owned())
            .map(|trace| vec![trace])
            .map_err(|message| ParseError { line: Some(first_index + 1), message });
    }
    let mut traces = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let number = index + 1;
        let value: Json = serde_json::from_str(line)
            .map_err(|error| ParseError { line: Some(number), message: format!("malformed JSON: {error}") })?;
        let trace =
            session(value, format!("{name}:{number}")).map_err(|message| ParseError { line: Some(number), message })?;
        traces.push(trace);
    }
    Ok(traces)
}

/// One session, by its shape.
fn session(value: Json, default_id: String) -> Result<Trace, String> {
    match value {
        Json::Object(object) if object.contains_key("events") => tau(object, default_id),
        Json::Object(mut object) if object.contains_key("messages") => {
            let messages = object.remove("messages").unwrap_or_default();
            let Json::Array(messages) = messages else {
                return Err("\"messages\" must be an array of chat messages".into());
            };
            let header = Header::read(&object, default_id)?;
            chat::transcript(&messages).map(|(format, events)| header.into_trace(format, events))
        }
        Json::Array(messages) => {
            let header = Header::read(&Map::new(), default_id)?;
            chat::transcript(&messages).map(|(format, events)| header.into_trace(format, events))
        }
        _ => Err("not a trace: expected a τ trace object with \"events\", a chat transcript object with \
                  \"messages\", or an array of chat messages"
            .into()),
    }
}

/// A line of a Claude Code session transcript: an entry with a `type` and
/// the `sessionId` it belongs to (nothing else carries both).
fn is_claude_code_entry(object: &Map<String, Json>) -> bool {
    object.get("type").is_some_and(Json::is_string)
        && object.get("sessionId").is_some_and(Json::is_string)
        && !object.contains_key("events")
        && !object.contains_key("messages")
}

/// The key under which the Claude Code reader hands the chat reader a tool
/// result's response as the client recorded it (never in a real message).
pub(super) const CLIENT_RESULT: &str = "tollgate:client_result";

/// A user entry's tool response as the client recorded it (`toolUseResult`),
/// put on its tool result block, when the entry answers exactly one call:
/// the hook read that response live (`tool_response`), while the block's
/// content is only the text the model read.
fn attach_client_result(entry: &Map<String, Json>, message: &mut Json) {
    let Some(response) = entry.get("toolUseResult").filter(|r| !r.is_null()) else { return };
    let Some(Json::Array(blocks)) = message.get_mut("content") else { return };
    let mut results = blocks.iter_mut().filter(|b| b.get("type").and_then(Json::as_str) == Some("tool_result"));
    let (Some(Json::Object(block)), None) = (results.next(), results.next()) else { return };
    block.insert(CLIENT_RESULT.to_owned(), super::client_result(response));
}

/// A Claude Code entry's message: its timestamp, line, message and the
/// call context its calls were made in.
type Entry = (String, usize, Json, Json);

/// A Claude Code session transcript (`~/.claude/projects/<project>/<session>.jsonl`,
/// its subagents' files appended): the `user` and `assistant` entries'
/// messages of each session, in the order of their timestamps (a subagent's
/// calls fall between its parent's, as the hook saw them), read as an
/// Anthropic transcript. Other entries (summaries, system notes, file
/// snapshots) carry no calls. One trace per session id, in order of first
/// appearance; the trace id is the session id.
fn claude_code(text: &str, name: &str) -> Result<Vec<Trace>, ParseError> {
    let mut sessions: Vec<(String, Vec<Entry>)> = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let number = index + 1;
        let bad = |message: String| ParseError { line: Some(number), message };
        let value: Json = serde_json::from_str(line).map_err(|error| bad(format!("malformed JSON: {error}")))?;
        let Json::Object(mut entry) = value else {
            return Err(bad("a Claude Code transcript line must be an object".into()));
        };
        if !is_claude_code_entry(&entry) {
            return Err(bad("a Claude Code transcript line needs a string \"type\" and \"sessionId\"".into()));
        }
        if !matches!(entry.get("type").and_then(Json::as_str), Some("user" | "assistant")) {
            continue;
        }
        let Some(mut message @ Json::Object(_)) = entry.remove("message") else {
            return Err(bad("a user or assistant entry needs a \"message\" object".into()));
        };
        attach_client_result(&entry, &mut message);
        let session = entry.get("sessionId").and_then(Json::as_str).unwrap_or_default().to_owned();
        let timestamp = entry.get("timestamp").and_then(Json::as_str).unwrap_or_default().to_owned();
        // What the hook would have put in the call's context: the entry's
        // working directory and subagent; the project directory is added
        // below, once the session's first entry is known.
        let mut context = Map::new();
        for (key, field) in [("cwd", "cwd"), ("agent_id", "agentId"), ("agent_type", "agentType")] {
            if let Some(Json::String(value)) = entry.get(field) {
                context.insert(key.to_owned(), Json::String(value.clone()));
            }
        }
        let item = (timestamp, number, message, Json::Object(context));
        match sessions.iter_mut().find(|(id, _)| *id == session) {
            Some((_, entries)) => entries.push(item),
            None => sessions.push((session, vec![item])),
        }
    }
    if sessions.is_empty() {
        return Err(ParseError { line: None, message: format!("{name}: the transcript holds no messages") });
    }
    let mut traces = Vec::with_capacity(sessions.len());
    for (session, mut entries) in sessions {
        // RFC 3339 timestamps in one form sort as text; equal ones keep
        // their order in the file.
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        let first_line = entries.first().map(|(_, line, _, _)| *line);
        // The project directory is where the session started (Claude Code's
        // CLAUDE_PROJECT_DIR): the first entry's working directory.
        let project_dir = entries.iter().find_map(|(_, _, _, context)| context.get("cwd").cloned());
        if let Some(project_dir) = project_dir {
            for (_, _, _, context) in &mut entries {
                if let Json::Object(context) = context {
                    context.insert("project_dir".to_owned(), project_dir.clone());
                }
            }
        }
        let messages: Vec<(&Json, Option<&Json>)> = entries
            .iter()
            .map(|(_, _, message, context)| (message, context.as_object().filter(|c| !c.is_empty()).map(|_| context)))
            .collect();
        let (_, events) =
            chat::transcript_with_context(&messages).map_err(|message| ParseError { line: first_line, message })?;
        let header = Header { id: session, domain: None, now: None, expect: None };
        traces.push(header.into_trace(Format::ClaudeCode, events));
    }
    Ok(traces)
}

/// The fields a session may carry besides its events.
struct Header {
    id: String,
    domain: Option<String>,
    now: Option<SessionTime>,
    expect: Option<Expect>,
}

impl Header {
    fn read(object: &Map<String, Json>, default_id: String) -> Result<Header, String> {
        let id = match object.get("id") {
            None | Some(Json::Null) => default_id,
            Some(Json::String(id)) if !id.is_empty() => id.clone(),
            Some(other) => return Err(format!("\"id\" must be a non-empty string, not {other}")),
        };
        let domain = optional_string(object, "domain")?;
        let now = optional_string(object, "now")?
            .map(|text| SessionTime::parse(&text).map_err(|e| format!("\"now\": {e}")))
            .transpose()?;
        let expect = match object.get("expect") {
            None | Some(Json::Null) => None,
            Some(value) => Some(expect(value)?),
        };
        Ok(Header { id, domain, now, expect })
    }

    fn into_trace(self, format: Format, events: Vec<TraceEvent>) -> Trace {
        Trace { id: self.id, domain: self.domain, now: self.now, events, expect: self.expect, format }
    }
}

fn optional_string(object: &Map<String, Json>, key: &str) -> Result<Option<String>, String> {
    match object.get(key) {
        None | Some(Json::Null) => Ok(None),
        Some(Json::String(text)) => Ok(Some(text.clone())),
        Some(other) => Err(format!("\"{key}\" must be a string, not {other}")),
    }
}

fn expect(value: &Json) -> Result<Expect, String> {
    let bad = || "\"expect\" must be {\"blocked_indexes\": [numbers], \"rule_ids\": [strings]}".to_owned();
    let object = value.as_object().ok_or_else(bad)?;
    let blocked_indexes = match object.get("blocked_indexes") {
        None => Vec::new(),
        Some(Json::Array(items)) => items
            .iter()
            .map(|item| item.as_u64().and_then(|n| usize::try_from(n).ok()).ok_or_else(bad))
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(bad()),
    };
    let rule_ids = match object.get("rule_ids") {
        None => Vec::new(),
        Some(Json::Array(items)) => {
            items.iter().map(|item| item.as_str().map(str::to_owned).ok_or_else(bad)).collect::<Result<_, _>>()?
        }
        Some(_) => return Err(bad()),
    };
    Ok(Expect { blocked_indexes, rule_ids })
}

/// A τ trace line (FORMAT.md).
fn tau(mut object: Map<String, Json>, default_id: String) -> Result<Trace, String> {
    let Some(Json::Array(items)) = object.remove("events") else {
        return Err("\"events\" must be an array".into());
    };
    let header = Header::read(&object, default_id)?;
    let mut events = Vec::with_capacity(items.len());
    for (index, item) in items.into_iter().enumerate() {
        events.push(tau_event(item).map_err(|message| format!("events[{index}]: {message}"))?);
    }
    Ok(header.into_trace(Format::Tau, events))
}

fn tau_event(item: Json) -> Result<TraceEvent, String> {
    let Json::Object(mut event) = item else {
        return Err("an event must be an object with \"call\" or \"user_action\"".into());
    };
    let (wrap, body): (fn(RecordedCall) -> TraceEvent, Json) = if let Some(call) = event.remove("call") {
        (TraceEvent::Call, call)
    } else if let Some(action) = event.remove("user_action") {
        (TraceEvent::UserAction, action)
    } else {
        return Err("an event must have \"call\" or \"user_action\"".into());
    };
    let Json::Object(mut body) = body else {
        return Err("a call must be an object with \"name\" and \"arguments\"".into());
    };
    let tool = match body.remove("name") {
        Some(Json::String(name)) if !name.is_empty() => name,
        _ => return Err("a call needs a non-empty string \"name\"".into()),
    };
    let arguments = match body.remove("arguments") {
        None | Some(Json::Null) => Json::Object(Map::new()),
        Some(arguments @ Json::Object(_)) => arguments,
        Some(other) => return Err(format!("the arguments of {tool} must be an object, not {other}")),
    };
    let outcome = match (event.remove("error"), event.remove("result")) {
        (Some(Json::String(error)), _) => Recorded::Error(error),
        (None | Some(Json::Null), Some(result)) => Recorded::Result(result),
        (None | Some(Json::Null), None) => Recorded::Missing,
        (Some(other), _) => return Err(format!("the error of {tool} must be a string or null, not {other}")),
    };
    Ok(wrap(RecordedCall { source_id: None, context: None, tool, arguments, outcome }))
}
