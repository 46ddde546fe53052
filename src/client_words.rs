//! An error of the chat turn told in the words of the API that was called.
//! The Responses and Messages APIs are translated onto a chat request, so
//! the checks behind the translation speak of `messages[4]`, `'tool'
//! messages` and `tools[2].function.parameters`; a client of the Responses
//! API sent `input[3]` and `function_call_output` items, one of the Messages
//! API `messages[2]` and `tool_result` blocks. Each translation records where
//! every chat message and function came from, and this puts the error back
//! into those places and words. Status and code stay the same.

use crate::error::ApiError;

/// How one API names what the chat request calls otherwise.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClientWords {
    /// The client's field that holds the conversation (`input`, `messages`).
    pub field: &'static str,
    /// What answers a call there (`function_call_output items`).
    pub results: &'static str,
    /// What a call is there (`function_call items`, `tool_use blocks`).
    pub calls: &'static str,
    /// What a function's schema is called there (`parameters`,
    /// `input_schema`).
    pub schema: &'static str,
    /// The client's place of each chat message, by its index.
    pub message_places: Vec<String>,
    /// The client's place of each chat function, by its index.
    pub tool_places: Vec<String>,
    /// Other chat fields by this API's names (`response_format` →
    /// `text.format`).
    pub renames: &'static [(&'static str, &'static str)],
}

impl ClientWords {
    /// `error` in these words; errors that name no chat field stay as
    /// they are.
    pub fn reword(&self, error: ApiError) -> ApiError {
        use ApiError::*;
        let param = match &error {
            InvalidValue { param, .. }
            | UnsupportedParameter { param, .. }
            | UnsupportedContent { param, .. } => param.clone(),
            InvalidToolCallId { .. } | ToolCallExpired { .. } | ContextLengthExceeded { .. } => {
                "messages".to_string()
            }
            _ => return error,
        };
        let own = self.place(&param);
        let message = self.text(&error.message());
        if own == param && message == error.message() {
            return error;
        }
        Reworded {
            inner: Box::new(error),
            param: Some(own),
            message,
        }
    }

    /// A chat param (`messages[4].content[1]`, `tools[0].function.name`)
    /// as the client's.
    fn place(&self, param: &str) -> String {
        if let Some((index, _rest)) = indexed(param, "messages") {
            return self
                .message_places
                .get(index)
                .cloned()
                .unwrap_or_else(|| self.field.to_string());
        }
        if param == "messages" {
            return self.field.to_string();
        }
        if let Some((index, rest)) = indexed(param, "tools") {
            let rest = rest.strip_prefix(".function").unwrap_or(rest);
            let rest = rest.replace("parameters", self.schema);
            return match self.tool_places.get(index) {
                Some(place) => format!("{place}{rest}"),
                None => "tools".to_string(),
            };
        }
        let mut param = param.to_string();
        for (chat, own) in self.renames {
            if param.starts_with(chat) {
                param.replace_range(..chat.len(), own);
            }
        }
        param
    }

    /// A message's text with each chat place and word replaced.
    fn text(&self, message: &str) -> String {
        let mut out = String::with_capacity(message.len());
        let mut rest = message;
        let next = |s: &str| {
            let found = [s.find("messages["), s.find("tools[")];
            found.into_iter().flatten().min()
        };
        while let Some(at) = next(rest) {
            out.push_str(&rest[..at]);
            let tail = &rest[at..];
            let end = tail
                .find(|c: char| c.is_whitespace() || matches!(c, '\'' | ',' | ';' | ':'))
                .unwrap_or(tail.len());
            // A sentence's full stop is not part of the place.
            let end = if tail[..end].ends_with('.') {
                end - 1
            } else {
                end
            };
            out.push_str(&self.place(&tail[..end]));
            rest = &tail[end..];
        }
        out.push_str(rest);
        for (chat, own) in self.renames {
            out = out.replace(chat, own);
        }
        out.replace("'tool' messages", self.results)
            .replace("tool messages", self.results)
            .replace("tool_calls", self.calls)
            .replace("'messages'", &format!("'{}'", self.field))
    }
}

/// `name[N]…` as `N` and the rest.
fn indexed<'a>(param: &'a str, name: &str) -> Option<(usize, &'a str)> {
    let inner = param.strip_prefix(name)?.strip_prefix('[')?;
    let close = inner.find(']')?;
    let index = inner[..close].parse().ok()?;
    Some((index, &inner[close + 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn responses() -> ClientWords {
        ClientWords {
            field: "input",
            results: "function_call_output items",
            calls: "function calls",
            schema: "parameters",
            message_places: vec!["instructions".into(), "input[0]".into(), "input[2]".into()],
            tool_places: vec!["tools[1]".into()],
            renames: &[("response_format", "text.format")],
        }
    }

    #[test]
    fn chat_places_become_the_clients() {
        let words = responses();
        let rows = [
            ("messages[2].content[0]", "input[2]"),
            ("messages[1]", "input[0]"),
            ("messages", "input"),
            ("messages[9]", "input"),
            ("tools[0].function.parameters", "tools[1].parameters"),
            ("response_format.json_schema", "text.format.json_schema"),
            ("model", "model"),
        ];
        for (chat, own) in rows {
            let error = ApiError::InvalidValue {
                param: chat.into(),
                message: format!("'{chat}' is wrong."),
            };
            let reworded = words.reword(error);
            assert_eq!(reworded.param(), Some(own), "{chat}");
            assert_eq!(reworded.message(), format!("'{own}' is wrong."), "{chat}");
            assert_eq!(reworded.code(), "invalid_value");
            assert_eq!(reworded.status(), 400);
        }
    }

    #[test]
    fn chat_words_become_the_clients() {
        let words = ClientWords {
            field: "messages",
            results: "tool_result blocks",
            calls: "tool_use blocks",
            schema: "input_schema",
            message_places: vec!["messages[0]".into(), "messages[0]".into()],
            tool_places: vec!["tools[0]".into()],
            renames: &[],
        };
        let error = ApiError::InvalidValue {
            param: "messages".into(),
            message: "The conversation must end with a user message, or with the 'tool' \
                      messages that answer the tool calls of the last assistant message."
                .into(),
        };
        let reworded = words.reword(error);
        assert!(reworded.message().contains("tool_result blocks"));
        assert!(!reworded.message().contains("'tool'"));
        let unknown = words.reword(ApiError::InvalidToolCallId {
            id: "toolu_x".into(),
        });
        assert_eq!(unknown.param(), Some("messages"));
        assert_eq!(unknown.code(), "invalid_tool_call_id");
        assert!(
            unknown.message().contains("tool_use blocks"),
            "{}",
            unknown.message()
        );
        let schema = words.reword(ApiError::InvalidValue {
            param: "tools[0].function.parameters".into(),
            message: "tools[0].function.parameters must be an object.".into(),
        });
        assert_eq!(schema.param(), Some("tools[0].input_schema"));
        assert_eq!(schema.message(), "tools[0].input_schema must be an object.");
        // Errors of no chat field are left alone.
        assert_eq!(words.reword(ApiError::SessionBusy), ApiError::SessionBusy);
    }
}
