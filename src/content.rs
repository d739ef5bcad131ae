//! What a message holds: text, images, and for the conversation history the
//! assistant's tool calls and the results that answer them. Provider-neutral:
//! each wire format translates them, and what a format cannot express is an
//! [`Error::InvalidRequest`](crate::Error::InvalidRequest) before any HTTP call.

use serde::{Deserialize, Serialize};

use crate::tools::{ToolCall, ToolResult};

/// One part of a message's content.
///
/// ```
/// use steer_llm::{ChatRequest, ImageSource, Message, Part};
/// let req = ChatRequest::new("openai/gpt-4o-mini").unwrap().message(Message::user_parts(vec![
///     Part::text("What is in this picture?"),
///     Part::image(ImageSource::url("https://example.com/cat.png")),
/// ]));
/// assert_eq!(req.messages[0].text(), "What is in this picture?");
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Part {
    /// Text.
    Text(String),
    /// An image (user messages).
    Image(ImageSource),
    /// A tool call the assistant made (assistant messages, for the history).
    ToolCall(ToolCall),
    /// The result of a tool call (tool messages).
    ToolResult(ToolResult),
    /// A block of the model's reasoning (assistant messages, for the history):
    /// sent back unchanged to a server of the family that made it, dropped for
    /// any other ([`crate::reasoning`]).
    Reasoning(crate::reasoning::Reasoning),
}

impl Part {
    /// A text part.
    pub fn text(text: impl Into<String>) -> Self {
        Part::Text(text.into())
    }

    /// An image part.
    pub fn image(source: ImageSource) -> Self {
        Part::Image(source)
    }

    /// The text, if this is a text part.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Part::Text(t) => Some(t),
            _ => None,
        }
    }

    /// What kind of part it is, for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Part::Text(_) => "text",
            Part::Image(_) => "image",
            Part::ToolCall(_) => "tool call",
            Part::ToolResult(_) => "tool result",
            Part::Reasoning(_) => "reasoning",
        }
    }
}

/// Where an image comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImageSource {
    /// An `http(s)` URL the provider fetches.
    Url(String),
    /// The image itself, base64-encoded, with its media type (`image/png`, ...).
    Base64 {
        /// `image/jpeg`, `image/png`, `image/gif` or `image/webp`.
        media_type: String,
        /// The base64 data (no `data:` prefix).
        data: String,
    },
}

impl ImageSource {
    /// An image at a URL.
    pub fn url(url: impl Into<String>) -> Self {
        ImageSource::Url(url.into())
    }

    /// An inline image.
    pub fn base64(media_type: impl Into<String>, data: impl Into<String>) -> Self {
        ImageSource::Base64 {
            media_type: media_type.into(),
            data: data.into(),
        }
    }

    /// Checks what every provider requires: an `http(s)` URL, or a known image
    /// media type with non-empty base64 data.
    pub fn validate(&self) -> Result<(), String> {
        match self {
            ImageSource::Url(url) => {
                let lower = url.to_ascii_lowercase();
                if lower.starts_with("https://") || lower.starts_with("http://") {
                    Ok(())
                } else {
                    Err(format!(
                        "image URL {:?} is not http(s); send the data as base64 instead",
                        crate::fold::truncate_chars(url, 60)
                    ))
                }
            }
            ImageSource::Base64 { media_type, data } => {
                const TYPES: [&str; 4] = ["image/jpeg", "image/png", "image/gif", "image/webp"];
                if !TYPES.contains(&media_type.as_str()) {
                    return Err(format!(
                        "image media type {media_type:?} is not one of {}",
                        TYPES.join(", ")
                    ));
                }
                let valid = !data.is_empty()
                    && data
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='));
                if valid {
                    Ok(())
                } else {
                    Err("image data is empty or not base64".into())
                }
            }
        }
    }

    /// The image as a URL: itself, or a `data:` URL of the inline data (OpenAI's form).
    pub fn as_url(&self) -> String {
        match self {
            ImageSource::Url(url) => url.clone(),
            ImageSource::Base64 { media_type, data } => format!("data:{media_type};base64,{data}"),
        }
    }

    /// Reads a URL back: a `data:` URL is inline data.
    pub fn from_url(url: &str) -> ImageSource {
        url.strip_prefix("data:")
            .and_then(|rest| rest.split_once(";base64,"))
            .map(|(media_type, data)| ImageSource::base64(media_type, data))
            .unwrap_or_else(|| ImageSource::url(url))
    }
}
