//! What the mock does with tools and output formats, deterministically.
//!
//! - A tool choice that requires a call (OpenAI `required` or a named function,
//!   Anthropic `any` or a named tool) always gets one: the named tool, else every
//!   tool the last user message names, else the first tool.
//! - With `auto` (or no choice), the mock calls each tool whose name appears in the
//!   last user message (case-insensitive), in the order the tools were given; a
//!   turn that answers tool results gets a text reply.
//! - Parallel calls off: only the first of those.
//! - Arguments satisfy the schema's required fields ([`value_for`]); structured
//!   output satisfies its schema the same way.

use serde_json::{Map, Value};

use super::words::WORDS;
use crate::tools::{Tool, ToolChoice};

/// A tool call the mock makes.
#[derive(Debug, Clone, PartialEq)]
pub struct MockCall {
    /// Its ordinal in the reply (ids are derived from it).
    pub ordinal: usize,
    /// The tool.
    pub name: String,
    /// The arguments.
    pub arguments: Value,
    /// The argument text, in the pieces it is streamed as.
    pub pieces: Vec<String>,
}

impl MockCall {
    /// The call's id in `prefix` style (`call_` for OpenAI, `toolu_` for Anthropic).
    pub fn id(&self, prefix: &str, seed: u64) -> String {
        let mixed = seed
            .wrapping_mul(0x9e37_79b9_7f4a_7c15)
            .wrapping_add(self.ordinal as u64);
        format!("{prefix}{mixed:016x}")
    }
}

/// The calls the mock makes for a request, given the last user message's text and
/// whether the conversation ends with tool results.
pub fn calls_for(
    tools: &[Tool],
    choice: Option<&ToolChoice>,
    parallel: bool,
    last_user: &str,
    answering_results: bool,
    seed: u64,
) -> Vec<MockCall> {
    if tools.is_empty() {
        return Vec::new();
    }
    let lower = last_user.to_lowercase();
    let named: Vec<&Tool> = tools
        .iter()
        .filter(|t| lower.contains(&t.name.to_lowercase()))
        .collect();
    let mut chosen: Vec<&Tool> = match choice {
        Some(ToolChoice::None) => Vec::new(),
        Some(ToolChoice::Tool(name)) => tools.iter().filter(|t| &t.name == name).collect(),
        Some(ToolChoice::Required) if named.is_empty() => tools.iter().take(1).collect(),
        Some(ToolChoice::Required) => named,
        Some(ToolChoice::Auto) | None if answering_results => Vec::new(),
        Some(ToolChoice::Auto) | None => named,
    };
    if !parallel {
        chosen.truncate(1);
    }
    chosen
        .into_iter()
        .enumerate()
        .map(|(ordinal, tool)| {
            let mut rng = fastrand::Rng::with_seed(seed ^ (ordinal as u64).wrapping_mul(0x5851));
            let arguments = value_for(&tool.input_schema, &mut rng, 0);
            MockCall {
                ordinal,
                name: tool.name.clone(),
                pieces: pieces(&arguments.to_string(), 7),
                arguments,
            }
        })
        .collect()
}

/// A value satisfying `schema`'s required parts: enums take their first value,
/// objects their required properties, arrays one item (or `minItems`), strings a
/// word, numbers within their bounds.
pub fn value_for(schema: &Value, rng: &mut fastrand::Rng, depth: usize) -> Value {
    if depth > 8 {
        return Value::Null;
    }
    if let Some(first) = schema
        .get("enum")
        .and_then(Value::as_array)
        .and_then(|e| e.first())
    {
        return first.clone();
    }
    if let Some(c) = schema.get("const") {
        return c.clone();
    }
    for key in ["anyOf", "oneOf", "allOf"] {
        if let Some(first) = schema
            .get(key)
            .and_then(Value::as_array)
            .and_then(|o| o.first())
        {
            return value_for(first, rng, depth + 1);
        }
    }
    let kind = match schema.get("type") {
        Some(Value::String(t)) => t.as_str(),
        Some(Value::Array(types)) => types
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null")
            .unwrap_or("null"),
        _ if schema.get("properties").is_some() => "object",
        _ => "string",
    };
    match kind {
        "object" => {
            let mut out = Map::new();
            let props = schema.get("properties").and_then(Value::as_object);
            for name in schema
                .get("required")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
            {
                let sub = props
                    .and_then(|p| p.get(name))
                    .cloned()
                    .unwrap_or(Value::Object(Map::new()));
                out.insert(name.to_string(), value_for(&sub, rng, depth + 1));
            }
            Value::Object(out)
        }
        "array" => {
            let items = schema.get("items").cloned().unwrap_or(Value::Null);
            let n = schema
                .get("minItems")
                .and_then(Value::as_u64)
                .unwrap_or(1)
                .clamp(1, 8);
            Value::Array((0..n).map(|_| value_for(&items, rng, depth + 1)).collect())
        }
        "integer" | "number" => {
            let min = schema.get("minimum").and_then(Value::as_f64).unwrap_or(1.0);
            let max = schema
                .get("maximum")
                .and_then(Value::as_f64)
                .unwrap_or(min.max(0.0) + 100.0)
                .max(min);
            let span = (max - min).clamp(0.0, 1e9) as u64;
            let n = min + rng.u64(0..=span) as f64;
            if kind == "integer" {
                Value::from(n.round() as i64)
            } else {
                serde_json::Number::from_f64(n + if n < max { 0.5 } else { 0.0 })
                    .map(Value::Number)
                    .unwrap_or(Value::from(0))
            }
        }
        "boolean" => Value::Bool(true),
        "null" => Value::Null,
        _ => Value::from(WORDS[rng.usize(..WORDS.len())]),
    }
}

/// `text` cut into pieces of `size` characters (the last may be shorter).
pub fn pieces(text: &str, size: usize) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    chars
        .chunks(size.max(1))
        .map(|c| c.iter().collect())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn tool(name: &str) -> Tool {
        Tool::new(
            name,
            json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}),
        )
    }

    #[test]
    fn required_named_and_auto_choices() {
        let tools = [tool("get_weather"), tool("get_time")];
        let names = |calls: Vec<MockCall>| calls.into_iter().map(|c| c.name).collect::<Vec<_>>();
        assert_eq!(
            names(calls_for(
                &tools,
                Some(&ToolChoice::Required),
                true,
                "hi",
                false,
                1
            )),
            ["get_weather"]
        );
        assert_eq!(
            names(calls_for(
                &tools,
                Some(&ToolChoice::Tool("get_time".into())),
                true,
                "hi",
                false,
                1
            )),
            ["get_time"]
        );
        assert_eq!(
            names(calls_for(&tools, None, true, "hi", false, 1)),
            Vec::<String>::new()
        );
        assert_eq!(
            names(calls_for(
                &tools,
                None,
                true,
                "use get_time and GET_WEATHER",
                false,
                1
            )),
            ["get_weather", "get_time"]
        );
        assert_eq!(
            names(calls_for(
                &tools,
                None,
                false,
                "get_time get_weather",
                false,
                1
            )),
            ["get_weather"]
        );
        assert!(
            calls_for(&tools, None, true, "get_time", true, 1).is_empty(),
            "answering results"
        );
        assert!(calls_for(&tools, Some(&ToolChoice::None), true, "get_time", false, 1).is_empty());
    }

    #[test]
    fn values_satisfy_the_required_parts_of_their_schema() {
        let schema = json!({
            "type": "object",
            "properties": {
                "name": {"type": "string"},
                "count": {"type": "integer", "minimum": 3, "maximum": 5},
                "ratio": {"type": "number"},
                "on": {"type": "boolean"},
                "unit": {"type": "string", "enum": ["c", "f"]},
                "tags": {"type": "array", "items": {"type": "string"}, "minItems": 2},
                "where": {"type": "object", "properties": {"lat": {"type": "number"}}, "required": ["lat"]},
                "optional": {"type": "string"}
            },
            "required": ["name", "count", "ratio", "on", "unit", "tags", "where"]
        });
        let v = value_for(&schema, &mut fastrand::Rng::with_seed(7), 0);
        assert!(v["name"].is_string());
        assert!((3..=5).contains(&v["count"].as_i64().unwrap()));
        assert!(v["ratio"].is_number() && v["on"] == true && v["unit"] == "c");
        assert_eq!(v["tags"].as_array().unwrap().len(), 2);
        assert!(v["where"]["lat"].is_number());
        assert!(v.get("optional").is_none());
        assert_eq!(pieces("abcdefgh", 3), vec!["abc", "def", "gh"]);
    }
}
