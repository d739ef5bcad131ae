//! The span of a request, in the OpenTelemetry semantic conventions for
//! generative AI: a user with `tracing-opentelemetry` gets standard GenAI client
//! spans (`chat gpt-4o`, kind client, `gen_ai.*` attributes) without a mapping.
//!
//! One span per request (`steer.request`, or `steer.stream` for a stream); each
//! attempt is a child span (`steer.attempt`, from the actors crate) carrying its
//! number, `http.request.resend_count` and, when it failed, `error.type` (the
//! failure's category). Resumptions, failovers and breaker rejections are events
//! on the request span. Prompt and reply text are recorded
//! (`gen_ai.input.messages`, `gen_ai.output.messages`) only when the client was
//! built with [`record_content`](crate::ClientBuilder::record_content).

use tracing::field::Empty;
use tracing::Span;

use crate::error::Error;
use crate::model::{ChatRequest, ChatResponse, FinishReason, Usage};

/// The vendor as the GenAI conventions name it (`gen_ai.provider.name`), from the
/// provider's registered name: `openai`, `anthropic`, `x_ai`, else the name itself.
pub fn provider_name(registered: &str) -> &str {
    match registered {
        "xai" => "x_ai",
        other => other,
    }
}

/// What a request's span is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Generate,
    Stream,
}

/// The span of one request to `provider` (its registered name).
pub(crate) fn request_span(req: &ChatRequest, kind: Kind, record_content: bool) -> Span {
    if !steer_actors::exec::spans::info_wanted() {
        return Span::none();
    }
    let model = req.model.model();
    let provider = req.model.provider();
    // One field list for both names (a span's name is fixed at its call site).
    macro_rules! genai_span {
        ($name:literal) => {
            tracing::info_span!(
                $name,
                otel.name = %format_args!("chat {model}"),
                otel.kind = "client",
                otel.status_code = Empty,
                gen_ai.operation.name = "chat",
                gen_ai.provider.name = provider_name(provider),
                gen_ai.request.model = model,
                gen_ai.request.max_tokens = Empty,
                gen_ai.request.temperature = Empty,
                gen_ai.request.stop_sequences = Empty,
                gen_ai.response.model = Empty,
                gen_ai.response.id = Empty,
                gen_ai.response.finish_reasons = Empty,
                gen_ai.usage.input_tokens = Empty,
                gen_ai.usage.output_tokens = Empty,
                gen_ai.usage.cache_read.input_tokens = Empty,
                gen_ai.usage.cache_creation.input_tokens = Empty,
                steer.cost.usd = Empty,
                steer.cost.wasted_usd = Empty,
                steer.cost.unpriced = Empty,
                steer.usage.estimated = Empty,
                gen_ai.input.messages = Empty,
                gen_ai.output.messages = Empty,
                error.type = Empty,
                steer.request_id = %req.request_id,
                steer.provider = provider,
            )
        };
    }
    let span = match kind {
        Kind::Generate => genai_span!("steer.request"),
        Kind::Stream => genai_span!("steer.stream"),
    };
    // No subscriber wants it: nothing to record (the JSON texts cost allocations),
    // and no span to carry (`steer_actors::exec::spans`).
    let span = steer_actors::exec::spans::kept(span);
    if span.is_none() {
        return span;
    }
    if let Some(n) = req.max_tokens {
        span.record("gen_ai.request.max_tokens", n);
    }
    if let Some(t) = req.temperature {
        span.record("gen_ai.request.temperature", f64::from(t));
    }
    if !req.stop.is_empty() {
        span.record(
            "gen_ai.request.stop_sequences",
            json_text(&req.stop).as_str(),
        );
    }
    if record_content {
        span.record("gen_ai.input.messages", json_text(&req.messages).as_str());
    }
    span
}

/// A value as JSON text (the conventions' arrays and message lists; tracing has
/// no array values).
fn json_text<T: serde::Serialize + ?Sized>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

/// The word of a finish reason in `gen_ai.response.finish_reasons`.
fn finish_word(reason: &FinishReason) -> &str {
    match reason {
        FinishReason::Stop => "stop",
        FinishReason::Length => "length",
        FinishReason::ContentFilter => "content_filter",
        FinishReason::Budget => "budget",
        FinishReason::ToolCalls => "tool_calls",
        FinishReason::Other(word) => word,
    }
}

/// Records how a request ended well: the answering model, the response id, the
/// finish reason, the tokens, and the text when content is recorded.
pub(crate) fn record_response(span: &Span, resp: &ChatResponse, record_content: bool) {
    if span.is_disabled() {
        return;
    }
    span.record("gen_ai.response.model", resp.model.as_str());
    if let Some(id) = &resp.response_id {
        span.record("gen_ai.response.id", id.as_str());
    }
    record_end(span, &resp.finish_reason, Some(resp.usage));
    if record_content {
        span.record("gen_ai.output.messages", resp.text.as_str());
    }
}

/// Records the finish reason and the tokens of a request that ended well (no
/// token attributes when the server reported no usage).
pub(crate) fn record_end(span: &Span, finish: &FinishReason, usage: Option<Usage>) {
    if span.is_disabled() {
        return;
    }
    span.record(
        "gen_ai.response.finish_reasons",
        json_text(&[finish_word(finish)]).as_str(),
    );
    if let Some(usage) = usage {
        // Every input token, the cache's included (the conventions' rule;
        // Anthropic counts its cache beside its `input_tokens`).
        span.record("gen_ai.usage.input_tokens", usage.input_tokens());
        span.record("gen_ai.usage.output_tokens", usage.completion_tokens);
        if let Some(n) = usage.cached_prompt_tokens {
            span.record("gen_ai.usage.cache_read.input_tokens", n);
        }
        if let Some(n) = usage.cache_write_tokens {
            span.record("gen_ai.usage.cache_creation.input_tokens", n);
        }
    }
}

/// Records what a request spent: its cost in dollars (every attempt's), the
/// part wasted, and whether a model was unpriced or a count estimated.
pub(crate) fn record_spend(span: &Span, spend: &crate::model::Spend) {
    if span.is_disabled() || spend.count == 0 {
        return;
    }
    span.record("steer.cost.usd", spend.total().dollars());
    span.record("steer.cost.wasted_usd", spend.wasted().dollars());
    if spend.unpriced() {
        span.record("steer.cost.unpriced", true);
    }
    if spend.estimated() {
        span.record("steer.usage.estimated", true);
    }
}

/// Records how a request failed: `error.type` (a low-cardinality word, see
/// [`Error::kind`]) and an error status.
pub(crate) fn record_error(span: &Span, e: &Error) {
    span.record("error.type", e.kind());
    span.record("otel.status_code", "ERROR");
}
