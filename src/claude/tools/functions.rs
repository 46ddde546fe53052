//! The client's functions, as a request lists them (`tools`, or the legacy
//! `functions`): checked the way OpenAI checks them, and given the names
//! the bridge lists them under (see `spec`).

use serde_json::{json, Value};

use super::spec::{Function, TOOL_PREFIX};
use crate::error::ApiError;
use crate::request_json::{invalid, shorten};

/// The Anthropic API's limit for a tool name.
const API_NAME_MAX: usize = 64;
/// OpenAI's limits.
const MAX_FUNCTIONS: usize = 128;
const CLIENT_NAME_MAX: usize = 64;

/// The function tools of `tools`; a tool of another type (a `custom`
/// free-form tool) is left out and named in `left_out` as `tools:<type>`.
pub(super) fn read_tools(
    tools: &Value,
    left_out: &mut Vec<String>,
) -> Result<Vec<Function>, ApiError> {
    let items = list("tools", tools)?;
    let mut functions = Vec::with_capacity(items.len());
    for (i, tool) in items.iter().enumerate() {
        let param = format!("tools[{i}]");
        let kind = tool.get("type").and_then(Value::as_str);
        match kind {
            Some("function") => {}
            Some(other) => {
                let name = format!("tools:{}", shorten(other));
                if !left_out.contains(&name) {
                    left_out.push(name);
                }
                continue;
            }
            None => {
                return Err(invalid(
                    &param,
                    format!("{param} must be an object with \"type\": \"function\"."),
                ))
            }
        }
        let Some(function) = tool.get("function") else {
            return Err(invalid(
                &format!("{param}.function"),
                format!("{param} has no 'function'."),
            ));
        };
        functions.push(read_function(&format!("{param}.function"), function)?);
    }
    unique_names(&functions, "tools")?;
    Ok(functions)
}

pub(super) fn read_functions(functions: &Value) -> Result<Vec<Function>, ApiError> {
    let items = list("functions", functions)?;
    let read = items
        .iter()
        .enumerate()
        .map(|(i, f)| read_function(&format!("functions[{i}]"), f))
        .collect::<Result<Vec<_>, _>>()?;
    unique_names(&read, "functions")?;
    Ok(read)
}

fn list<'a>(param: &str, value: &'a Value) -> Result<&'a Vec<Value>, ApiError> {
    let Some(items) = value.as_array() else {
        return Err(invalid(param, format!("'{param}' must be an array.")));
    };
    if items.len() > MAX_FUNCTIONS {
        return Err(invalid(
            param,
            format!(
                "'{param}' has {} items; at most {MAX_FUNCTIONS} are allowed.",
                items.len()
            ),
        ));
    }
    Ok(items)
}

fn read_function(param: &str, function: &Value) -> Result<Function, ApiError> {
    let Some(object) = function.as_object() else {
        return Err(invalid(param, format!("{param} must be an object.")));
    };
    let name = match object.get("name") {
        Some(Value::String(name)) => name,
        _ => {
            return Err(invalid(
                &format!("{param}.name"),
                format!("{param} needs a string 'name'."),
            ))
        }
    };
    let length = name.chars().count();
    if length == 0 || length > CLIENT_NAME_MAX || name.chars().any(char::is_control) {
        return Err(invalid(
            &format!("{param}.name"),
            format!(
                "{param}.name must be 1 to {CLIENT_NAME_MAX} characters (letters, digits, \
                 '_' and '-')."
            ),
        ));
    }
    let description = match object.get("description") {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) => Some(text.clone()),
        Some(_) => {
            return Err(invalid(
                &format!("{param}.description"),
                format!("{param}.description must be a string."),
            ))
        }
    };
    let parameters = match object.get("parameters") {
        None | Some(Value::Null) => json!({"type": "object", "properties": {}}),
        Some(Value::Object(schema)) => {
            let mut schema = schema.clone();
            // MCP requires an object schema; OpenAI lets the type be implied.
            schema
                .entry("type")
                .or_insert_with(|| Value::String("object".into()));
            Value::Object(schema)
        }
        Some(_) => {
            return Err(invalid(
                &format!("{param}.parameters"),
                format!("{param}.parameters must be a JSON Schema object."),
            ))
        }
    };
    if parameters.get("type").and_then(Value::as_str) != Some("object") {
        return Err(invalid(
            &format!("{param}.parameters"),
            format!("{param}.parameters must describe an object (\"type\": \"object\")."),
        ));
    }
    Ok(Function {
        name: name.clone(),
        mcp_name: String::new(),
        description,
        parameters,
    })
}

fn unique_names(functions: &[Function], param: &str) -> Result<(), ApiError> {
    for (i, f) in functions.iter().enumerate() {
        if functions[..i].iter().any(|g| g.name == f.name) {
            return Err(invalid(
                param,
                format!("'{param}' names the function '{}' twice.", shorten(&f.name)),
            ));
        }
    }
    Ok(())
}

/// Gives every function the name the bridge lists it under: its own when
/// `mcp__client__<name>` is a valid API tool name, else `fn<i>_<stem>`.
pub(super) fn assign_mcp_names(functions: &mut [Function]) {
    let room = API_NAME_MAX - TOOL_PREFIX.len();
    for (i, function) in functions.iter_mut().enumerate() {
        let name = &function.name;
        let fits = name.len() <= room
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        function.mcp_name = if fits {
            name.clone()
        } else {
            let stem: String = name
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '-' {
                        c
                    } else {
                        '_'
                    }
                })
                .collect();
            let tag = format!("fn{i}_");
            let keep = room - tag.len();
            format!("{tag}{}", &stem[..stem.len().min(keep)])
        };
    }
    // A client name may equal another's stand-in: give way to the client.
    for i in 0..functions.len() {
        let clash =
            (0..functions.len()).any(|j| j != i && functions[j].mcp_name == functions[i].mcp_name);
        if clash && functions[i].mcp_name != functions[i].name {
            functions[i].mcp_name = format!("fn{i}_x");
        }
    }
}
