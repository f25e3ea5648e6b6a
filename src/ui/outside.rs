//! Everything the TUI shows comes through [`App::update`](super::App::update),
//! and every string in it came from outside: records, requests, comments,
//! operations, audit events, errors. They are screened here, at that one
//! door, before any screen keeps them: escape sequences, C1 controls and
//! bidi overrides become U+FFFD. Output bytes are left to the log pane,
//! which turns colour codes into styles and shows every other escape.

use super::Message;
use crate::engine::{Event, Response};
use serde::{de::DeserializeOwned, Serialize};

/// The message with every string in it screened.
pub fn screen(message: Message) -> Message {
    match message {
        Message::Answer(request, Ok(Response::Output(chunks))) => {
            Message::Answer(request, Ok(Response::Output(chunks)))
        }
        Message::Answer(request, Ok(response)) => match screened(&response) {
            Ok(response) => Message::Answer(request, Ok(response)),
            Err(why) => Message::Answer(request, Err(super::Failure::Connection(why))),
        },
        Message::Answer(request, Err(failure)) => match screened(&failure) {
            Ok(failure) => Message::Answer(request, Err(failure)),
            Err(why) => Message::Answer(request, Err(super::Failure::Connection(why))),
        },
        Message::Engine(event @ Event::Output { .. }) => Message::Engine(event),
        Message::Engine(event) => match screened(&event) {
            Ok(event) => Message::Engine(event),
            Err(why) => Message::Status(why, true),
        },
        Message::Status(text, is_error) => {
            Message::Status(crate::text::screened(&text).into_owned(), is_error)
        }
        other => other,
    }
}

/// A copy of `value` whose strings (and map keys) are all screened.
fn screened<T: Serialize + DeserializeOwned>(value: &T) -> Result<T, String> {
    let mut tree = serde_json::to_value(value)
        .map_err(|e| format!("cannot show what the server sent: {e}"))?;
    walk(&mut tree);
    serde_json::from_value(tree).map_err(|e| format!("cannot show what the server sent: {e}"))
}

fn walk(value: &mut serde_json::Value) {
    use serde_json::Value;
    match value {
        Value::String(s) => {
            if let std::borrow::Cow::Owned(clean) = crate::text::screened(s) {
                *s = clean;
            }
        }
        Value::Array(items) => items.iter_mut().for_each(walk),
        Value::Object(map) => {
            let entries = std::mem::take(map);
            for (key, mut item) in entries {
                walk(&mut item);
                map.insert(crate::text::screened(&key).into_owned(), item);
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}
