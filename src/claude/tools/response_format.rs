//! `response_format`: the schema the answer must follow, for the CLI's
//! `--json-schema`.

use serde_json::{json, Map, Value};

use crate::error::ApiError;
use crate::request_json::{invalid, present};

/// The schema travels as one argument (`--json-schema`), which Linux caps
/// at 128 KiB.
const MAX_SCHEMA_BYTES: usize = 64 * 1024;

/// `response_format`: the JSON schema the answer must follow, if any.
pub(super) fn read_response_format(json: &Map<String, Value>) -> Result<Option<Value>, ApiError> {
    let Some(format) = present(json, "response_format") else {
        return Ok(None);
    };
    let kind = format.get("type").and_then(Value::as_str);
    let schema = match kind {
        Some("text") => return Ok(None),
        Some("json_object") => json!({"type": "object"}),
        Some("json_schema") => {
            let Some(spec) = format.get("json_schema").and_then(Value::as_object) else {
                return Err(invalid(
                    "response_format.json_schema",
                    "'response_format.json_schema' must be an object with a 'schema'.",
                ));
            };
            match spec.get("schema") {
                None | Some(Value::Null) => json!({"type": "object"}),
                Some(schema @ Value::Object(_)) => schema.clone(),
                Some(_) => {
                    return Err(invalid(
                        "response_format.json_schema.schema",
                        "'response_format.json_schema.schema' must be a JSON Schema object.",
                    ))
                }
            }
        }
        _ => {
            return Err(invalid(
                "response_format.type",
                "'response_format.type' must be \"text\", \"json_object\" or \"json_schema\".",
            ))
        }
    };
    if schema.to_string().len() > MAX_SCHEMA_BYTES {
        return Err(invalid(
            "response_format.json_schema.schema",
            format!("The schema is too large: at most {MAX_SCHEMA_BYTES} bytes of JSON."),
        ));
    }
    Ok(Some(schema))
}
