//! What a request offers the model besides text: its functions (`tools`,
//! or the legacy `functions`), how it wants them used (`tool_choice`,
//! `function_call`) and the shape the answer must have
//! (`response_format`). Pure: read from the body, checked, and reduced to
//! what the CLI is started with.
//!
//! A function reaches the CLI as an MCP tool of the bridge, which the model
//! sees as `mcp__client__<mcp name>`. The MCP name is the client's name when
//! the whole tool name stays within what the Anthropic API accepts
//! (letters, digits, `_`, `-`, at most 64); any other name gets a short
//! stand-in, and answers are mapped back to the client's name.

use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use super::functions::{assign_mcp_names, read_functions, read_tools};
use super::response_format::read_response_format;
use crate::error::ApiError;
use crate::request_json::{invalid, present, shorten};

/// The bridge's name in `--mcp-config`: tools show as `mcp__client__<name>`.
pub const SERVER_NAME: &str = "client";
/// What the CLI puts before every bridge tool's name.
pub const TOOL_PREFIX: &str = "mcp__client__";
/// The tool `--json-schema` makes the model call.
pub const STRUCTURED_OUTPUT_TOOL: &str = "StructuredOutput";

/// One client function, as offered to the model.
#[derive(Debug, Clone, PartialEq)]
pub struct Function {
    /// The client's name: what its answers carry.
    pub name: String,
    /// The name the bridge lists it under.
    pub mcp_name: String,
    pub description: Option<String>,
    /// The function's `parameters`: the MCP tool's `inputSchema`.
    pub parameters: Value,
}

/// Tools and output shape of one request, once checked.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ToolSpec {
    /// The functions offered to the model (none for `tool_choice: "none"`).
    pub functions: Vec<Function>,
    /// The request used `functions`/`function_call`: answers use
    /// `function_call` instead of `tool_calls`.
    pub legacy: bool,
    /// `--json-schema`: the JSON schema the answer must follow.
    pub output_schema: Option<Value>,
    /// Parameters accepted but not (fully) honoured.
    pub ignored: Vec<String>,
}

impl ToolSpec {
    /// True when the CLI needs the bridge.
    pub fn offers_functions(&self) -> bool {
        !self.functions.is_empty()
    }

    /// The client's name of a tool the model called (`mcp__client__x`).
    pub fn client_name(&self, tool: &str) -> Option<&str> {
        let mcp_name = tool.strip_prefix(TOOL_PREFIX)?;
        self.functions
            .iter()
            .find(|f| f.mcp_name == mcp_name)
            .map(|f| f.name.as_str())
    }

    /// The functions offered, as a digest (`None` for none): a warm CLI
    /// with a bridge can be told of other functions (see `bridge`).
    pub fn functions_digest(&self) -> Option<[u8; 32]> {
        if self.functions.is_empty() {
            return None;
        }
        let functions: Vec<Value> = self
            .functions
            .iter()
            .map(|f| json!([f.name, f.mcp_name, f.description, f.parameters]))
            .collect();
        Some(Sha256::digest(json!([functions, self.legacy]).to_string().as_bytes()).into())
    }

    /// The output schema, as a digest: a CLI keeps the one it started with.
    pub fn schema_digest(&self) -> Option<[u8; 32]> {
        let schema = self.output_schema.as_ref()?;
        Some(Sha256::digest(schema.to_string().as_bytes()).into())
    }

    /// The bridge's `tools/list` answer. Every tool is marked read-only, so
    /// that the CLI calls the functions of one answer together and the
    /// client gets them all at once.
    pub fn mcp_tools(&self) -> Value {
        let tools: Vec<Value> = self
            .functions
            .iter()
            .map(|f| {
                let mut tool = json!({
                    "name": f.mcp_name,
                    "inputSchema": f.parameters,
                    "annotations": {"readOnlyHint": true},
                });
                if let Some(description) = &f.description {
                    tool["description"] = Value::String(description.clone());
                }
                tool
            })
            .collect();
        json!({ "tools": tools })
    }
}

/// Reads `tools`/`functions`, `tool_choice`/`function_call`,
/// `parallel_tool_calls` and `response_format`.
pub fn read_tool_spec(json: &Map<String, Value>) -> Result<ToolSpec, ApiError> {
    let tools = present(json, "tools");
    let functions = present(json, "functions");
    if tools.is_some() && functions.is_some() {
        return Err(invalid(
            "functions",
            "Send either 'tools' or the legacy 'functions', not both.",
        ));
    }
    let legacy =
        functions.is_some() || (tools.is_none() && present(json, "function_call").is_some());
    let mut ignored = Vec::new();
    let mut all = match (tools, functions) {
        (Some(tools), _) => read_tools(tools, &mut ignored)?,
        (None, Some(functions)) => read_functions(functions)?,
        (None, None) => Vec::new(),
    };
    let (choice_param, choice) = if legacy {
        ("function_call", present(json, "function_call"))
    } else {
        ("tool_choice", present(json, "tool_choice"))
    };
    if let Some(choice) = choice {
        match read_choice(choice_param, choice, legacy)? {
            Choice::Auto => {}
            Choice::None => all.clear(),
            Choice::Required => ignored.push(choice_param_name(legacy).into()),
            Choice::Named(name) => {
                let Some(function) = all.iter().find(|f| f.name == name).cloned() else {
                    return Err(invalid(
                        choice_param,
                        format!(
                            "'{choice_param}' names the function '{}', which is not in '{}'.",
                            shorten(&name),
                            if legacy { "functions" } else { "tools" }
                        ),
                    ));
                };
                all = vec![function];
                ignored.push(choice_param_name(legacy).into());
            }
        }
    }
    match present(json, "parallel_tool_calls") {
        None | Some(Value::Bool(true)) => {}
        Some(Value::Bool(false)) => ignored.push("parallel_tool_calls".into()),
        Some(_) => {
            return Err(invalid(
                "parallel_tool_calls",
                "'parallel_tool_calls' must be a boolean.",
            ))
        }
    }
    assign_mcp_names(&mut all);
    Ok(ToolSpec {
        functions: all,
        legacy,
        output_schema: read_response_format(json)?,
        ignored,
    })
}

fn choice_param_name(legacy: bool) -> &'static str {
    if legacy {
        "function_call"
    } else {
        "tool_choice"
    }
}

enum Choice {
    None,
    Auto,
    Required,
    Named(String),
}

fn read_choice(param: &str, choice: &Value, legacy: bool) -> Result<Choice, ApiError> {
    match choice {
        Value::String(word) => match (word.as_str(), legacy) {
            ("none", _) => Ok(Choice::None),
            ("auto", _) => Ok(Choice::Auto),
            ("required", false) => Ok(Choice::Required),
            _ => Err(invalid(
                param,
                format!(
                    "'{param}' must be {}, or name a function.",
                    if legacy {
                        "\"none\" or \"auto\""
                    } else {
                        "\"none\", \"auto\" or \"required\""
                    }
                ),
            )),
        },
        Value::Object(object) => {
            let name = if legacy {
                object.get("name")
            } else {
                if object.get("type").and_then(Value::as_str) != Some("function") {
                    return Err(invalid(
                        param,
                        format!(
                            "'{param}' as an object must be {{\"type\": \"function\", \
                             \"function\": {{\"name\": ...}}}}."
                        ),
                    ));
                }
                object.get("function").and_then(|f| f.get("name"))
            };
            match name.and_then(Value::as_str) {
                Some(name) => Ok(Choice::Named(name.to_string())),
                None => Err(invalid(
                    param,
                    format!("'{param}' names no function: give its 'name'."),
                )),
            }
        }
        _ => Err(invalid(
            param,
            format!("'{param}' must be a string or an object."),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(body: Value) -> Result<ToolSpec, ApiError> {
        read_tool_spec(body.as_object().unwrap())
    }

    fn weather() -> Value {
        json!({"type": "function", "function": {"name": "get_weather", "description": "Weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}})
    }

    #[test]
    fn functions_become_mcp_tools_marked_read_only() {
        let s = spec(json!({"tools": [weather()]})).unwrap();
        assert!(!s.legacy);
        assert_eq!(
            s.client_name("mcp__client__get_weather"),
            Some("get_weather")
        );
        assert_eq!(s.client_name("get_weather"), None);
        let listed = s.mcp_tools();
        assert_eq!(listed["tools"][0]["name"], "get_weather");
        assert_eq!(listed["tools"][0]["description"], "Weather");
        assert_eq!(listed["tools"][0]["annotations"]["readOnlyHint"], true);
        assert_eq!(
            listed["tools"][0]["inputSchema"]["properties"]["city"]["type"],
            "string"
        );
    }

    #[test]
    fn names_the_api_would_refuse_are_mapped_both_ways() {
        let long = "a".repeat(60);
        let s = spec(json!({"tools": [
            {"type": "function", "function": {"name": "my.tool"}},
            {"type": "function", "function": {"name": long}},
        ]}))
        .unwrap();
        let names: Vec<&str> = s.functions.iter().map(|f| f.mcp_name.as_str()).collect();
        assert_eq!(names[0], "fn0_my_tool");
        assert!(names[1].starts_with("fn1_aaa") && TOOL_PREFIX.len() + names[1].len() <= 64);
        assert_eq!(s.client_name("mcp__client__fn0_my_tool"), Some("my.tool"));
        assert_eq!(
            s.client_name(&format!("mcp__client__{}", names[1])),
            Some(long.as_str())
        );
        // An implied object type is made explicit for MCP.
        assert_eq!(s.functions[0].parameters["type"], "object");
    }

    #[test]
    fn tool_choice_none_offers_nothing_and_a_named_one_offers_only_it() {
        let two = json!([weather(), {"type": "function", "function": {"name": "get_time"}}]);
        let none = spec(json!({"tools": two, "tool_choice": "none"})).unwrap();
        assert!(!none.offers_functions() && none.ignored.is_empty());
        let named = spec(json!({"tools": two, "tool_choice":
            {"type": "function", "function": {"name": "get_time"}}}))
        .unwrap();
        assert_eq!(named.functions.len(), 1);
        assert_eq!(named.functions[0].name, "get_time");
        assert_eq!(named.ignored, ["tool_choice"]);
        let required = spec(json!({"tools": two, "tool_choice": "required"})).unwrap();
        assert_eq!(required.functions.len(), 2);
        assert_eq!(required.ignored, ["tool_choice"]);
        let auto = spec(json!({"tools": two, "tool_choice": "auto"})).unwrap();
        assert!(auto.ignored.is_empty());
        let err = spec(json!({"tools": two, "tool_choice":
            {"type": "function", "function": {"name": "nope"}}}))
        .unwrap_err();
        assert_eq!(err.param(), Some("tool_choice"));
    }

    #[test]
    fn legacy_functions_and_their_choice() {
        let s = spec(
            json!({"functions": [{"name": "f", "parameters": {"type": "object"}}],
            "function_call": {"name": "f"}}),
        )
        .unwrap();
        assert!(s.legacy);
        assert_eq!(s.ignored, ["function_call"]);
        assert!(spec(json!({"functions": [], "tools": []})).is_err());
    }

    #[test]
    fn tools_of_other_types_are_left_out_and_named() {
        let s = spec(json!({"tools": [
            {"type": "custom", "custom": {"name": "apply_patch"}},
            {"type": "function", "function": {"name": "f"}},
            {"type": "custom", "custom": {"name": "other"}},
        ]}))
        .unwrap();
        assert_eq!(s.functions.len(), 1);
        assert_eq!(s.functions[0].name, "f");
        assert_eq!(s.ignored, ["tools:custom"]);
        let none = spec(json!({"tools": [{"type": "custom", "custom": {"name": "x"}}]})).unwrap();
        assert!(!none.offers_functions());
    }

    #[test]
    fn bad_tools_get_a_400_naming_the_field() {
        for (body, param) in [
            (json!({"tools": {}}), "tools"),
            (
                json!({"tools": [{"type": "function"}]}),
                "tools[0].function",
            ),
            (
                json!({"tools": [{"type": "function", "function": {"name": ""}}]}),
                "tools[0].function.name",
            ),
            (
                json!({"tools": [{"type": "function", "function": {"name": "f", "parameters": []}}]}),
                "tools[0].function.parameters",
            ),
            (
                json!({"tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "string"}}}]}),
                "tools[0].function.parameters",
            ),
            (json!({"tools": [weather(), weather()]}), "tools"),
            (
                json!({"tools": [weather()], "tool_choice": "sometimes"}),
                "tool_choice",
            ),
            (
                json!({"tools": [weather()], "parallel_tool_calls": "yes"}),
                "parallel_tool_calls",
            ),
            (
                json!({"response_format": {"type": "xml"}}),
                "response_format.type",
            ),
            (
                json!({"response_format": {"type": "json_schema"}}),
                "response_format.json_schema",
            ),
        ] {
            let err = spec(body.clone()).unwrap_err();
            assert_eq!(err.status(), 400, "{body}");
            assert_eq!(err.param(), Some(param), "{body}");
        }
    }

    #[test]
    fn response_formats_become_a_schema() {
        assert_eq!(
            spec(json!({"response_format": {"type": "text"}}))
                .unwrap()
                .output_schema,
            None
        );
        assert_eq!(
            spec(json!({"response_format": {"type": "json_object"}}))
                .unwrap()
                .output_schema,
            Some(json!({"type": "object"}))
        );
        let schema = json!({"type": "object", "properties": {"a": {"type": "integer"}}});
        let s = spec(json!({"response_format": {"type": "json_schema",
            "json_schema": {"name": "x", "schema": schema, "strict": true}}}))
        .unwrap();
        assert_eq!(s.output_schema, Some(schema));
        assert!(s.schema_digest().is_some() && s.functions_digest().is_none());
        assert_eq!(ToolSpec::default().schema_digest(), None);
    }
}
