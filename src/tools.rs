//! Tools the model may call, the calls it makes and the results that answer them,
//! and structured output: what a reply must look like.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A tool the model may call.
///
/// ```
/// use serde_json::json;
/// use steer_llm::Tool;
/// let weather = Tool::new("get_weather", json!({
///     "type": "object",
///     "properties": {"city": {"type": "string"}},
///     "required": ["city"],
/// }))
/// .description("Current weather in a city")
/// .strict(true);
/// assert_eq!(weather.name, "get_weather");
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tool {
    /// Its name (letters, digits, `_` and `-`, at most 64).
    pub name: String,
    /// What it does, for the model.
    pub description: Option<String>,
    /// JSON Schema of its input (an object schema).
    pub input_schema: Value,
    /// Ask the provider to enforce the schema exactly (OpenAI `strict`, Anthropic
    /// strict tool use).
    pub strict: bool,
    /// Calling it acts on the world (sends, pays, writes): a request that
    /// offers it is never hedged (two copies could both call it). Not sent.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub side_effects: bool,
}

impl Tool {
    /// A tool with this input schema.
    pub fn new(name: impl Into<String>, input_schema: Value) -> Self {
        Tool {
            name: name.into(),
            description: None,
            input_schema,
            strict: false,
            side_effects: false,
        }
    }

    /// Sets the description.
    pub fn description(mut self, text: impl Into<String>) -> Self {
        self.description = Some(text.into());
        self
    }

    /// Sets `strict`.
    pub fn strict(mut self, strict: bool) -> Self {
        self.strict = strict;
        self
    }

    /// Marks a tool whose calls act on the world: a request that offers it is
    /// never hedged.
    pub fn side_effects(mut self, on: bool) -> Self {
        self.side_effects = on;
        self
    }

    /// Checks what every provider requires of a tool.
    pub fn validate(&self) -> Result<(), String> {
        let valid_name = !self.name.is_empty()
            && self.name.len() <= 64
            && self
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !valid_name {
            return Err(format!(
                "tool name {:?} must be 1 to 64 letters, digits, `_` or `-`",
                crate::fold::truncate_chars(&self.name, 70)
            ));
        }
        if !self.input_schema.is_object() {
            return Err(format!(
                "tool {:?}: its input schema must be a JSON object",
                self.name
            ));
        }
        Ok(())
    }
}

/// Whether and which tool the model must call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToolChoice {
    /// The model decides (the default when tools are given).
    Auto,
    /// No tool call.
    None,
    /// At least one tool call (OpenAI `required`, Anthropic `any`).
    Required,
    /// A call of this tool.
    Tool(String),
}

/// A tool call the model made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    /// The provider's id of the call (a tool result answers it by this id).
    pub id: String,
    /// The tool.
    pub name: String,
    /// The arguments, parsed (`Null` when they are not JSON: see `unparsed`).
    pub arguments: Value,
    /// The raw argument text, when it did not parse as JSON.
    pub unparsed: Option<String>,
}

impl ToolCall {
    /// A call with parsed arguments.
    pub fn new(id: impl Into<String>, name: impl Into<String>, arguments: Value) -> Self {
        ToolCall {
            id: id.into(),
            name: name.into(),
            arguments,
            unparsed: None,
        }
    }

    /// A call from its raw argument text (as OpenAI sends it): parsed if it is
    /// JSON, else kept as text in `unparsed`. Empty text is an empty object.
    pub fn from_text(id: impl Into<String>, name: impl Into<String>, text: &str) -> Self {
        let trimmed = text.trim();
        let (arguments, unparsed) = if trimmed.is_empty() {
            (Value::Object(Default::default()), None)
        } else {
            match serde_json::from_str(trimmed) {
                Ok(v) => (v, None),
                Err(_) => (Value::Null, Some(text.to_string())),
            }
        };
        ToolCall {
            id: id.into(),
            name: name.into(),
            arguments,
            unparsed,
        }
    }

    /// The arguments as JSON text (the raw text if they did not parse).
    pub fn arguments_text(&self) -> String {
        match &self.unparsed {
            Some(raw) => raw.clone(),
            None => self.arguments.to_string(),
        }
    }

    /// The arguments as a typed value.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, OutputError> {
        if let Some(raw) = &self.unparsed {
            return Err(OutputError::not_json(raw));
        }
        serde_json::from_value(self.arguments.clone()).map_err(|e| OutputError {
            message: format!("tool call {:?}: {e}", self.name),
            text: self.arguments.to_string(),
        })
    }

    /// Whether two calls ask for the same thing (same tool, same arguments),
    /// whatever their ids.
    pub fn same_as(&self, other: &ToolCall) -> bool {
        self.name == other.name
            && self.arguments == other.arguments
            && self.unparsed == other.unparsed
    }
}

/// The result of a tool call, sent back to the model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolResult {
    /// The id of the call it answers.
    pub call_id: String,
    /// The result, as text (JSON is text too).
    pub content: String,
    /// Whether the tool failed.
    pub is_error: bool,
}

impl ToolResult {
    /// A successful result.
    pub fn new(call_id: impl Into<String>, content: impl Into<String>) -> Self {
        ToolResult {
            call_id: call_id.into(),
            content: content.into(),
            is_error: false,
        }
    }
}

/// What the reply must look like.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResponseFormat {
    /// Any JSON object (OpenAI and xAI `json_object`; Anthropic has no such mode).
    Json,
    /// JSON following this schema (OpenAI and xAI `json_schema`, Anthropic
    /// `output_config.format`).
    JsonSchema {
        /// A name for the schema (OpenAI requires one).
        name: String,
        /// The JSON Schema.
        schema: Value,
        /// Ask the provider to enforce it exactly.
        strict: bool,
    },
}

/// A reply (or tool call) that is not the JSON it was asked to be.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the reply is not the JSON asked for: {message}")]
pub struct OutputError {
    /// What is wrong.
    pub message: String,
    /// The text that did not parse.
    pub text: String,
}

impl OutputError {
    pub(crate) fn not_json(text: &str) -> Self {
        let message = match serde_json::from_str::<Value>(text) {
            Err(e) => e.to_string(),
            Ok(_) => "not the expected shape".into(),
        };
        OutputError {
            message,
            text: text.to_string(),
        }
    }
}
