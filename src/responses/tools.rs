//! The Responses API's tools as the chat functions the model is offered,
//! and the way back from a chat call to this API's call item.
//!
//! - `function` tools are chat functions.
//! - `namespace` tools (Codex groups its tools so) offer their inner tools;
//!   the chat name is `<namespace>.<name>` (a dot no function name may
//!   hold), and a call comes back with its `namespace` and own `name`.
//! - `custom` (free-form) tools take one string: they are offered as a
//!   function of one `input` string, and a call comes back as a
//!   `custom_tool_call` whose `input` is that string (Codex's `exec` is one).
//! - Hosted tools (`web_search`, `file_search`, `code_interpreter`, `mcp`,
//!   …) run on OpenAI's side: they are left out and named `tools:<type>`.
//!
//! Tools may also come in an `additional_tools` input item (Codex sends
//! them that way); they are read the same.

use serde_json::{json, Map, Value};

use super::request::invalid;
use crate::error::ApiError;

/// A tool the model is offered, by the name its chat call carries.
#[derive(Debug, Clone, PartialEq)]
pub struct Offered {
    pub chat_name: String,
    pub namespace: Option<String>,
    pub name: String,
    /// A free-form tool: its call carries `input`, not `arguments`.
    pub custom: bool,
}

/// The tools of one request: the chat functions, where each came from and
/// how its calls are told.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tools {
    pub functions: Vec<Value>,
    pub offered: Vec<Offered>,
    /// The client's place of each function, for errors.
    pub places: Vec<String>,
}

/// The chat name of a call of `name` in `namespace`.
pub fn chat_name(namespace: Option<&str>, name: &str) -> String {
    match namespace {
        Some(namespace) => format!("{namespace}.{name}"),
        None => name.to_string(),
    }
}

impl Tools {
    /// Reads the tools of `tools` (at `param`); hosted ones are named in
    /// `left_out`.
    pub fn read(
        &mut self,
        tools: &Value,
        param: &str,
        left_out: &mut Vec<String>,
    ) -> Result<(), ApiError> {
        let Some(tools) = tools.as_array() else {
            return Err(invalid(param, format!("'{param}' must be an array.")));
        };
        for (i, tool) in tools.iter().enumerate() {
            self.read_one(tool, &format!("{param}[{i}]"), None, left_out)?;
        }
        Ok(())
    }

    fn read_one(
        &mut self,
        tool: &Value,
        param: &str,
        namespace: Option<&str>,
        left_out: &mut Vec<String>,
    ) -> Result<(), ApiError> {
        let kind = tool.get("type").and_then(Value::as_str).unwrap_or("");
        match kind {
            "function" | "custom" => self.offer(tool, param, namespace, kind == "custom"),
            "namespace" if namespace.is_none() => {
                let Some(name) = tool.get("name").and_then(Value::as_str) else {
                    return Err(invalid(
                        &format!("{param}.name"),
                        "A namespace tool needs a 'name'.",
                    ));
                };
                let Some(inner) = tool.get("tools").and_then(Value::as_array) else {
                    return Err(invalid(
                        &format!("{param}.tools"),
                        "A namespace tool needs its 'tools'.",
                    ));
                };
                for (j, tool) in inner.iter().enumerate() {
                    let at = format!("{param}.tools[{j}]");
                    self.read_one(tool, &at, Some(name), left_out)?;
                }
                Ok(())
            }
            other => {
                let kind: String = other.chars().take(40).collect();
                let name = format!("tools:{}", if kind.is_empty() { "untyped" } else { &kind });
                if !left_out.contains(&name) {
                    left_out.push(name);
                }
                Ok(())
            }
        }
    }

    fn offer(
        &mut self,
        tool: &Value,
        param: &str,
        namespace: Option<&str>,
        custom: bool,
    ) -> Result<(), ApiError> {
        let Some(name) = tool.get("name").and_then(Value::as_str) else {
            return Err(invalid(
                &format!("{param}.name"),
                "A function tool needs a string 'name'.",
            ));
        };
        let chat_name = chat_name(namespace, name);
        if self.offered.iter().any(|o| o.chat_name == chat_name) {
            // Sent twice (in `tools` and an `additional_tools` item): the
            // first one stands.
            return Ok(());
        }
        let mut function = Map::new();
        function.insert("name".into(), json!(chat_name));
        if let Some(description) = tool.get("description").filter(|v| !v.is_null()) {
            function.insert("description".into(), description.clone());
        }
        if custom {
            function.insert("parameters".into(), custom_parameters(tool));
        } else {
            for field in ["parameters", "strict"] {
                if let Some(value) = tool.get(field).filter(|v| !v.is_null()) {
                    function.insert(field.into(), value.clone());
                }
            }
        }
        self.functions
            .push(json!({"type": "function", "function": function}));
        self.places.push(param.to_string());
        self.offered.push(Offered {
            chat_name,
            namespace: namespace.map(str::to_string),
            name: name.to_string(),
            custom,
        });
        Ok(())
    }

    /// How the chat call named `chat_name` is told (`None`: a plain
    /// function of that name).
    pub fn offered(&self, chat_name: &str) -> Option<&Offered> {
        self.offered.iter().find(|o| o.chat_name == chat_name)
    }
}

/// A free-form tool's one string argument, with its grammar when it has
/// one, so that the model writes what the tool parses.
fn custom_parameters(tool: &Value) -> Value {
    let mut description = String::from("The tool's whole input, as raw text.");
    let format = &tool["format"];
    if format["type"] == "grammar" {
        let syntax = format["syntax"].as_str().unwrap_or("grammar");
        let definition = format["definition"].as_str().unwrap_or("");
        description.push_str(&format!(
            " It must match this {syntax} grammar:\n{definition}"
        ));
    }
    json!({
        "type": "object",
        "properties": {"input": {"type": "string", "description": description}},
        "required": ["input"],
    })
}

/// A custom tool call's `input` from its chat arguments.
pub fn custom_input(arguments: &str) -> String {
    serde_json::from_str::<Value>(arguments)
        .ok()
        .and_then(|args| args.get("input").and_then(Value::as_str).map(String::from))
        .unwrap_or_else(|| arguments.to_string())
}

/// A custom tool call's chat arguments from its `input`.
pub fn custom_arguments(input: &str) -> String {
    json!({ "input": input }).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codex_tools_become_functions_and_hosted_ones_are_named() {
        let tools = json!([
            {"type": "namespace", "name": "functions", "tools": [
                {"type": "custom", "name": "exec", "description": "Run JS",
                 "format": {"type": "grammar", "syntax": "lark", "definition": "start: /.+/"}},
                {"type": "function", "name": "wait", "parameters": {"type": "object"}},
            ]},
            {"type": "web_search", "external_web_access": false},
            {"type": "function", "name": "plain", "parameters": {"type": "object"}},
            {"type": "image_generation"},
            {"type": "web_search"},
        ]);
        let mut read = Tools::default();
        let mut left_out = Vec::new();
        read.read(&tools, "tools", &mut left_out).unwrap();
        let names: Vec<&str> = read
            .functions
            .iter()
            .map(|f| f["function"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["functions.exec", "functions.wait", "plain"]);
        assert_eq!(left_out, ["tools:web_search", "tools:image_generation"]);
        assert_eq!(
            read.places,
            ["tools[0].tools[0]", "tools[0].tools[1]", "tools[2]"]
        );
        let exec = &read.functions[0]["function"]["parameters"];
        assert_eq!(exec["required"], json!(["input"]));
        let described = exec["properties"]["input"]["description"].as_str().unwrap();
        assert!(described.contains("lark grammar:\nstart: /.+/"));
        let offered = read.offered("functions.exec").unwrap();
        assert!(offered.custom);
        assert_eq!(offered.namespace.as_deref(), Some("functions"));
        assert_eq!(offered.name, "exec");
        assert!(read
            .offered("plain")
            .is_some_and(|o| !o.custom && o.namespace.is_none()));
    }

    #[test]
    fn a_tool_sent_twice_is_offered_once() {
        let mut read = Tools::default();
        let mut left_out = Vec::new();
        let tools = json!([{"type": "function", "name": "f"}]);
        read.read(&tools, "tools", &mut left_out).unwrap();
        read.read(&tools, "input[0].tools", &mut left_out).unwrap();
        assert_eq!(read.functions.len(), 1);
    }

    #[test]
    fn custom_input_round_trips() {
        let input = "await tools.exec_command({cmd: \"echo hi\"})\n";
        assert_eq!(custom_input(&custom_arguments(input)), input);
        // Arguments that are not the one-string object pass as they are.
        assert_eq!(custom_input("not json"), "not json");
    }
}
