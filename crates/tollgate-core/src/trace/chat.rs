//! Chat transcripts: the tool calls in a conversation, with their results.
//!
//! - OpenAI chat completions: an assistant message's `tool_calls` (`id`,
//!   `function.name`, `function.arguments` as JSON text) and `role: "tool"`
//!   messages answering them by `tool_call_id`, `content` a string or text
//!   parts.
//! - Anthropic Messages: `tool_use` content blocks (`id`, `name`, `input`)
//!   and `tool_result` blocks answering them by `tool_use_id`, `content` a
//!   string or text blocks, `is_error` for failures.
//!
//! A transcript is one or the other by the tool messages it holds; one with
//! none has no events. A result that is JSON text is read as JSON.

use super::{Format, Recorded, RecordedCall, TraceEvent};
use serde_json::{Map, Value as Json};
use std::collections::BTreeMap;

/// The calls of a transcript in order, and the format they were in.
pub(super) fn transcript(messages: &[Json]) -> Result<(Format, Vec<TraceEvent>), String> {
    let with_none: Vec<(&Json, Option<&Json>)> = messages.iter().map(|message| (message, None)).collect();
    transcript_with_context(&with_none)
}

/// [`transcript`], each message with the call context (`context` in rules)
/// its calls were made in, when the transcript records one.
pub(super) fn transcript_with_context(
    messages: &[(&Json, Option<&Json>)],
) -> Result<(Format, Vec<TraceEvent>), String> {
    let mut reader = Reader::default();
    for (index, (message, context)) in messages.iter().enumerate() {
        reader.context = context.cloned();
        reader.message(message).map_err(|message| format!("messages[{index}]: {message}"))?;
    }
    let format = match (reader.openai, reader.anthropic) {
        (true, true) => return Err("the transcript mixes OpenAI tool calls and Anthropic tool_use blocks".into()),
        (false, true) => Format::Anthropic,
        _ => Format::OpenAi,
    };
    Ok((format, reader.events.into_iter().map(TraceEvent::Call).collect()))
}

#[derive(Default)]
struct Reader {
    events: Vec<RecordedCall>,
    /// The transcript's call ids, to the index of their event.
    ids: BTreeMap<String, usize>,
    openai: bool,
    anthropic: bool,
    /// The context of the message being read.
    context: Option<Json>,
}

impl Reader {
    fn message(&mut self, message: &Json) -> Result<(), String> {
        let object = message.as_object().ok_or("a message must be an object")?;
        let role = object.get("role").and_then(Json::as_str).ok_or("a message needs a string \"role\"")?;
        if let Some(calls) = object.get("tool_calls").filter(|calls| !calls.is_null()) {
            self.openai = true;
            let calls = calls.as_array().ok_or("\"tool_calls\" must be an array")?;
            for (index, call) in calls.iter().enumerate() {
                self.openai_call(call).map_err(|message| format!("tool_calls[{index}]: {message}"))?;
            }
        }
        if role == "tool" {
            self.openai = true;
            let id =
                object.get("tool_call_id").and_then(Json::as_str).ok_or("a tool message needs \"tool_call_id\"")?;
            let text = text(object.get("content"))?;
            return self.result(id, text.map_or(Recorded::Result(Json::Null), |t| Recorded::Result(json_or_text(t))));
        }
        if let Some(Json::Array(blocks)) = object.get("content") {
            for (index, block) in blocks.iter().enumerate() {
                self.anthropic_block(block).map_err(|message| format!("content[{index}]: {message}"))?;
            }
        }
        Ok(())
    }

    fn openai_call(&mut self, call: &Json) -> Result<(), String> {
        let id = call.get("id").and_then(Json::as_str).ok_or("a tool call needs a string \"id\"")?;
        let function = call.get("function").and_then(Json::as_object).ok_or("a tool call needs \"function\"")?;
        let name = function.get("name").and_then(Json::as_str).ok_or("a function call needs a string \"name\"")?;
        let arguments = match function.get("arguments") {
            None | Some(Json::Null) => Json::Object(Map::new()),
            Some(Json::String(text)) if text.trim().is_empty() => Json::Object(Map::new()),
            Some(Json::String(text)) => serde_json::from_str(text)
                .map_err(|error| format!("the arguments of {name} (call {id}) are not valid JSON: {error}"))?,
            Some(object @ Json::Object(_)) => object.clone(),
            Some(other) => return Err(format!("the arguments of {name} must be JSON text, not {other}")),
        };
        self.call(id, name, arguments)
    }

    fn anthropic_block(&mut self, block: &Json) -> Result<(), String> {
        match block.get("type").and_then(Json::as_str) {
            Some("tool_use") => {
                self.anthropic = true;
                let id = block.get("id").and_then(Json::as_str).ok_or("a tool_use block needs a string \"id\"")?;
                let name =
                    block.get("name").and_then(Json::as_str).ok_or("a tool_use block needs a string \"name\"")?;
                let input = match block.get("input") {
                    None | Some(Json::Null) => Json::Object(Map::new()),
                    Some(input) => input.clone(),
                };
                self.call(id, name, input)
            }
            Some("tool_result") => {
                self.anthropic = true;
                let id = block
                    .get("tool_use_id")
                    .and_then(Json::as_str)
                    .ok_or("a tool_result block needs a string \"tool_use_id\"")?;
                let text = text(block.get("content"))?;
                let failed = match block.get("is_error") {
                    None | Some(Json::Null) => false,
                    Some(Json::Bool(failed)) => *failed,
                    Some(other) => return Err(format!("\"is_error\" must be true or false, not {other}")),
                };
                let outcome = match (failed, text) {
                    (true, text) => Recorded::Error(text.unwrap_or_default()),
                    // What the client itself recorded as the tool's response
                    // (a Claude Code transcript's `toolUseResult`), already
                    // read as the workflow reads it: that, not the text.
                    (false, _) if block.get(super::parse::CLIENT_RESULT).is_some() => {
                        Recorded::Result(block.get(super::parse::CLIENT_RESULT).cloned().unwrap_or(Json::Null))
                    }
                    (false, Some(text)) => Recorded::Result(json_or_text(text)),
                    (false, None) => Recorded::Result(Json::Null),
                };
                self.result(id, outcome)
            }
            _ => Ok(()),
        }
    }

    fn call(&mut self, id: &str, name: &str, arguments: Json) -> Result<(), String> {
        if name.is_empty() {
            return Err(format!("call {id} names no tool"));
        }
        if self.ids.insert(id.to_owned(), self.events.len()).is_some() {
            return Err(format!("the call id '{id}' is used twice"));
        }
        self.events.push(RecordedCall {
            source_id: Some(id.to_owned()),
            context: self.context.clone(),
            tool: name.to_owned(),
            arguments,
            outcome: Recorded::Missing,
        });
        Ok(())
    }

    fn result(&mut self, id: &str, outcome: Recorded) -> Result<(), String> {
        let event = self
            .ids
            .get(id)
            .and_then(|&index| self.events.get_mut(index))
            .ok_or_else(|| format!("a tool result for unknown call id '{id}'"))?;
        if event.outcome != Recorded::Missing {
            return Err(format!("a second tool result for call id '{id}'"));
        }
        event.outcome = outcome;
        Ok(())
    }
}

/// The text of a result's content: a string, or the text of its text
/// parts (other parts, such as images, carry no data for rules).
fn text(content: Option<&Json>) -> Result<Option<String>, String> {
    match content {
        None | Some(Json::Null) => Ok(None),
        Some(Json::String(text)) => Ok(Some(text.clone())),
        Some(Json::Array(parts)) => {
            let mut text = String::new();
            for part in parts {
                if part.get("type").and_then(Json::as_str) == Some("text") {
                    text.push_str(part.get("text").and_then(Json::as_str).ok_or("a text part needs \"text\"")?);
                }
            }
            Ok(Some(text))
        }
        Some(other) => Err(format!("a tool result's content must be text or a list of parts, not {other}")),
    }
}

/// A tool's output: JSON if it is JSON text, else the text itself.
fn json_or_text(text: String) -> Json {
    serde_json::from_str(&text).unwrap_or(Json::String(text))
}
