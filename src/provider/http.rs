//! HTTP plumbing shared by the provider clients: building the reqwest client,
//! turning responses and reqwest errors into [`ProviderError`]s, and driving a
//! stream decoder over an SSE body.

use std::collections::VecDeque;
use std::error::Error as StdError;
use std::future::Future;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::{FutureExt, Stream, StreamExt};
use http::HeaderMap;

use super::EventStream;
use crate::error::{Error, FailureKind, ProviderError, TransportKind};
use crate::model::{ChatRequest, ChatResponse, ProviderEvent, RequestId};
use crate::secret::ApiKey;
use crate::wire::openai::Parsed;
use crate::wire::sse::{SseDecoder, SseEvent, DEFAULT_MAX_EVENT_BYTES};
use crate::wire::{DecodeError, Progress, StreamDecoder};

/// Largest error body kept for the classifier.
pub const ERROR_BODY_LIMIT: usize = 64 * 1024;
/// Largest successful non-streaming body accepted.
pub const RESPONSE_BODY_LIMIT: usize = 32 * 1024 * 1024;

/// Builds the reqwest client steer uses when the caller gives none: rustls, no
/// retries of its own (reliability belongs to the actors), no overall timeout
/// (deadlines belong to the request actors), a bounded connect time, and no
/// redirects: a provider API never needs one, and following one would carry the
/// key's header (Anthropic's `x-api-key` survives reqwest's cross-origin
/// stripping) to wherever a proxy points. A 3xx is an error like any other status.
/// No `User-Agent` of steer's own: with it an OpenAI request carries seven
/// headers, and the seventh grows its header map past glibc's per-thread cache
/// (an allocation under the shared arena's lock on every request, measured in
/// BENCHMARKS.md); set one per request (`extra_headers`) or with your own client.
pub fn default_http_client(connect_timeout: Duration) -> Result<reqwest::Client, Error> {
    reqwest::Client::builder()
        .connect_timeout(connect_timeout)
        .redirect(reqwest::redirect::Policy::none())
        .retry(reqwest::retry::never())
        .tcp_nodelay(true)
        .pool_idle_timeout(Duration::from_secs(60))
        .build()
        .map_err(|e| crate::error::ConfigError::start(format!("cannot build the HTTP client: {e}")))
}

/// Who is calling: what every error of one attempt carries.
#[derive(Clone)]
pub(crate) struct CallContext {
    pub provider: String,
    pub request_id: RequestId,
    pub api_key: Option<ApiKey>,
    /// Largest server-sent event accepted.
    pub max_event_bytes: usize,
}

impl CallContext {
    // The error builders are cold: kept out of the success path's code and its
    // instruction cache lines.
    #[cold]
    pub(crate) fn error(&self, kind: FailureKind) -> ProviderError {
        ProviderError::new(self.provider.clone(), self.request_id.clone(), kind)
    }

    fn scrub(&self, text: String) -> String {
        match &self.api_key {
            Some(key) => key.scrub(&text),
            None => text,
        }
    }

    #[cold]
    pub(crate) fn transport(&self, e: &reqwest::Error) -> ProviderError {
        self.error(self.transport_failure(e))
    }

    /// A reqwest error as a failure: a response the HTTP parser refused (an
    /// oversized or broken head) is a malformed response, not a network fault.
    fn transport_failure(&self, e: &reqwest::Error) -> FailureKind {
        let message = self.scrub(error_chain(e));
        if is_parse_error(e) {
            FailureKind::Malformed { message }
        } else {
            FailureKind::Transport {
                kind: transport_kind(e),
                message,
            }
        }
    }

    #[cold]
    pub(crate) fn malformed(&self, message: String) -> ProviderError {
        self.error(FailureKind::Malformed {
            message: self.scrub(message),
        })
    }
}

/// The provider's request id from `x-request-id` (OpenAI, xAI) or `request-id` (Anthropic).
pub(crate) fn provider_request_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get("x-request-id")
        .or_else(|| headers.get("request-id"))
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// Adds a request's extra headers to `headers`, after steer's own (names or
/// values a header cannot carry are skipped, with a warning).
pub(crate) fn extra_headers(headers: &mut HeaderMap, req: &ChatRequest) {
    for (name, value) in &req.extra_headers.0 {
        match (
            http::HeaderName::from_bytes(name.as_bytes()),
            http::HeaderValue::from_str(value),
        ) {
            (Ok(name), Ok(value)) => {
                headers.append(name, value);
            }
            _ => tracing::warn!(header = %name, "extra header skipped: not a valid HTTP header"),
        }
    }
}

/// Sends the request; a non-success status becomes a [`FailureKind::Status`] error
/// with headers and (bounded) body.
pub(crate) async fn send(
    ctx: &CallContext,
    sent: impl Future<Output = reqwest::Result<reqwest::Response>>,
) -> Result<reqwest::Response, ProviderError> {
    let response = sent.await.map_err(|e| ctx.transport(&e))?;
    if response.status().is_success() {
        return Ok(response);
    }
    // Boxed: the error path's reads would otherwise grow every request's future
    // (the success path's too) past the allocator's per-thread cache size.
    Err(Box::pin(status_error(ctx, response)).await)
}

/// The error of a response with a non-success status: its headers and its
/// (bounded, scrubbed) body.
async fn status_error(ctx: &CallContext, response: reqwest::Response) -> ProviderError {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = read_error_body(ctx, response).await;
    with_response(ctx.error(FailureKind::Status { status, body }), headers)
}

/// `err` with the response's headers and the provider's id of the request in them.
fn with_response(mut err: ProviderError, headers: HeaderMap) -> ProviderError {
    err.provider_request_id = provider_request_id(&headers);
    err.headers = headers;
    err
}

/// An error body, at most [`ERROR_BODY_LIMIT`] bytes, with the key scrubbed out
/// before it is cut: a cut through the key cannot leave a piece of it behind.
async fn read_error_body(ctx: &CallContext, response: reqwest::Response) -> Bytes {
    let Some(key) = &ctx.api_key else {
        return read_limited(response, ERROR_BODY_LIMIT).await.0;
    };
    // Read a key's length past the limit, so that a key straddling the limit is
    // seen whole; scrub; then cut.
    let (body, _) = read_limited(
        response,
        ERROR_BODY_LIMIT.saturating_add(key.expose().len()),
    )
    .await;
    let scrubbed = key.scrub_bytes(&body);
    let mut cut = scrubbed.len().min(ERROR_BODY_LIMIT);
    if let Ok(text) = std::str::from_utf8(&scrubbed) {
        while !text.is_char_boundary(cut) {
            cut = cut.saturating_sub(1);
        }
    }
    // What is left at the cut may still end in the start of the key.
    Bytes::from(key.scrub_bytes(&scrubbed[..cut]).into_owned())
}

/// Reads at most `limit` bytes of a body; the flag says whether it all arrived.
async fn read_limited(mut response: reqwest::Response, limit: usize) -> (Bytes, bool) {
    let mut buf = BytesMut::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                let room = limit.saturating_sub(buf.len());
                buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
                if chunk.len() > room {
                    return (buf.freeze(), false);
                }
            }
            Ok(None) => return (buf.freeze(), true),
            Err(_) => return (buf.freeze(), false),
        }
    }
}

/// Reads a whole successful body, failing on transport errors and oversize bodies.
pub(crate) async fn read_body(
    ctx: &CallContext,
    response: &mut reqwest::Response,
) -> Result<Bytes, ProviderError> {
    if response
        .content_length()
        .is_some_and(|n| n > RESPONSE_BODY_LIMIT as u64)
    {
        return Err(too_large(ctx));
    }
    // Chunk by chunk (`chunk()`'s future is 32 bytes, `bytes()`'s 568: it would
    // grow every request's future past the allocator's per-thread cache size);
    // a body that comes in one chunk, as most do, is returned without a copy.
    let transport = |e: reqwest::Error| ctx.transport(&e);
    let Some(first) = response.chunk().await.map_err(transport)? else {
        return Ok(Bytes::new());
    };
    if first.len() > RESPONSE_BODY_LIMIT {
        return Err(too_large(ctx));
    }
    let Some(second) = response.chunk().await.map_err(transport)? else {
        return Ok(first);
    };
    // The rest apart (boxed, and its code out of the common path's): most
    // bodies end with their first chunk.
    Box::pin(read_rest(ctx, response, first, second)).await
}

/// The rest of a body whose first two chunks came apart: gathered into one
/// buffer, within the limit.
async fn read_rest(
    ctx: &CallContext,
    response: &mut reqwest::Response,
    first: Bytes,
    second: Bytes,
) -> Result<Bytes, ProviderError> {
    let mut len = first.len();
    // Whether the body, with `chunk`, is past the limit.
    let mut past_limit = |chunk: &Bytes| {
        len = len.saturating_add(chunk.len());
        len > RESPONSE_BODY_LIMIT
    };
    if past_limit(&second) {
        return Err(too_large(ctx));
    }
    let mut buf = BytesMut::with_capacity(first.len().saturating_add(second.len()));
    buf.extend_from_slice(&first);
    buf.extend_from_slice(&second);
    while let Some(chunk) = response.chunk().await.map_err(|e| ctx.transport(&e))? {
        if past_limit(&chunk) {
            return Err(too_large(ctx));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

/// A body past [`RESPONSE_BODY_LIMIT`].
#[cold]
fn too_large(ctx: &CallContext) -> ProviderError {
    ctx.malformed(format!(
        "response body larger than {RESPONSE_BODY_LIMIT} bytes"
    ))
}

/// Turns a successful SSE response into steer stream events, starting with `start`.
pub(crate) fn decode_sse<D: StreamDecoder>(
    ctx: CallContext,
    response: reqwest::Response,
    decoder: D,
    start: ProviderEvent,
) -> EventStream {
    // Only what a classifier reads of a 200 is kept for a later in-band error, and
    // copied: hyper's header values share the buffer the response head was read
    // into, and keeping any of them keeps that whole buffer (about 10 KiB) alive.
    let headers = classifier_headers(response.headers());
    let state = SseState {
        provider_request_id: provider_request_id(&headers),
        headers,
        body: Box::pin(response.bytes_stream()),
        sse: SseDecoder::new(ctx.max_event_bytes),
        framed: VecDeque::new(),
        fed: Vec::new(),
        decoder,
        pending: VecDeque::from([start]),
        scratch: Vec::new(),
        events: 0,
        content_started: false,
        done: false,
        ctx,
    };
    Box::pin(futures::stream::unfold(state, SseState::next))
}

type BodySource = std::pin::Pin<Box<dyn Stream<Item = Result<Bytes, reqwest::Error>> + Send>>;

struct SseState<D> {
    ctx: CallContext,
    provider_request_id: Option<String>,
    headers: HeaderMap,
    body: BodySource,
    /// Frames the body into events, bounded.
    sse: SseDecoder,
    /// Events framed and not yet decoded, oldest first.
    framed: VecDeque<SseEvent>,
    /// The framer's output buffer, reused.
    fed: Vec<SseEvent>,
    decoder: D,
    /// Events decoded and not yet yielded, oldest first.
    pending: VecDeque<ProviderEvent>,
    /// The decoder's output buffer, reused while events flow. Both buffers are
    /// released before waiting on the network: a waiting stream holds none.
    scratch: Vec<ProviderEvent>,
    events: usize,
    content_started: bool,
    done: bool,
}

impl<D: StreamDecoder> SseState<D> {
    async fn next(mut self) -> Option<(Result<ProviderEvent, ProviderError>, Self)> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                if matches!(event, ProviderEvent::TextDelta { .. }) {
                    self.content_started = true;
                }
                return Some((Ok(event), self));
            }
            if self.done {
                return None;
            }
            let kind = if let Some(event) = self.framed.pop_front() {
                self.events = self.events.saturating_add(1);
                match self
                    .decoder
                    .on_event(&event.event, &event.data, &mut self.scratch)
                {
                    Ok(progress) => {
                        self.pending.extend(self.scratch.drain(..));
                        self.done = progress == Progress::Done;
                        continue;
                    }
                    Err(DecodeError::InBand(body)) => FailureKind::InBand {
                        body: self.ctx.scrub(body),
                    },
                    Err(DecodeError::Malformed(message)) => FailureKind::Malformed {
                        message: self.ctx.scrub(message),
                    },
                }
            } else {
                let next = match self.body.next().now_or_never() {
                    Some(next) => next,
                    None => {
                        self.pending = VecDeque::new();
                        self.scratch = Vec::new();
                        self.framed = VecDeque::new();
                        self.fed = Vec::new();
                        self.body.next().await
                    }
                };
                match next {
                    None => FailureKind::Incomplete {
                        events: self.events,
                    },
                    Some(Err(e)) => self.ctx.transport_failure(&e),
                    Some(Ok(bytes)) => match self.sse.push(&bytes, &mut self.fed) {
                        Ok(()) => {
                            self.framed.extend(self.fed.drain(..));
                            continue;
                        }
                        Err(e) => FailureKind::Malformed {
                            message: format!("malformed SSE: {e}"),
                        },
                    },
                }
            };
            self.done = true;
            let mut err = self.ctx.error(kind);
            err.provider_request_id = self.provider_request_id.clone();
            err.headers = self.headers.clone();
            err.content_started = self.content_started;
            return Some((Err(err), self));
        }
    }
}

/// The headers a classifier reads of a successful stream's response (waits, request
/// ids), copied (names and values) into a map of their own.
fn classifier_headers(all: &HeaderMap) -> HeaderMap {
    // Rate-limit counts of a 200 say nothing about an error inside it: not kept.
    let wanted = |name: &str| {
        name.starts_with("retry-after")
            || matches!(name, "x-should-retry" | "x-request-id" | "request-id")
    };
    let count = all.keys().filter(|k| wanted(k.as_str())).count();
    let mut kept = HeaderMap::with_capacity(count);
    for (name, value) in all.iter().filter(|(k, _)| wanted(k.as_str())) {
        let copied = (
            http::HeaderName::from_bytes(name.as_str().as_bytes()),
            http::HeaderValue::from_bytes(value.as_bytes()),
        );
        if let (Ok(name), Ok(value)) = copied {
            kept.append(name, value);
        }
    }
    kept
}

/// A one-line description of a reqwest error with its causes.
fn error_chain(e: &reqwest::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

/// Whether the HTTP parser refused the response (a head too large, a bad status
/// line or header): the server answered, but not with HTTP steer can read.
fn is_parse_error(e: &reqwest::Error) -> bool {
    let mut source: Option<&(dyn StdError + 'static)> = e.source();
    while let Some(s) = source {
        if let Some(h) = s.downcast_ref::<hyper::Error>() {
            return h.is_parse() || h.is_parse_status();
        }
        source = s.source();
    }
    false
}

/// Whether `e` is a rustls error, possibly wrapped in (nested) io errors.
fn is_tls_error(mut e: &(dyn StdError + 'static)) -> bool {
    loop {
        if e.downcast_ref::<rustls::Error>().is_some() {
            return true;
        }
        match e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner) => e = inner,
            None => return false,
        }
    }
}

/// Which layer a reqwest error comes from, by walking its causes.
pub(crate) fn transport_kind(e: &reqwest::Error) -> TransportKind {
    if e.is_timeout() {
        return if e.is_connect() {
            TransportKind::ConnectTimeout
        } else {
            TransportKind::Timeout
        };
    }
    let mut source: Option<&(dyn StdError + 'static)> = e.source();
    while let Some(s) = source {
        if is_tls_error(s) {
            return TransportKind::Tls;
        }
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind::*;
            match io.kind() {
                ConnectionRefused | AddrNotAvailable | NetworkUnreachable | HostUnreachable => {
                    return TransportKind::Connect
                }
                ConnectionReset | ConnectionAborted | BrokenPipe | UnexpectedEof => {
                    return TransportKind::Reset
                }
                TimedOut => return TransportKind::Timeout,
                _ => {}
            }
        }
        let text = s.to_string().to_ascii_lowercase();
        if text.contains("dns error") || text.contains("failed to lookup address") {
            return TransportKind::Dns;
        }
        if text.contains("certificate") || text.contains("tls") || text.contains("handshake") {
            return TransportKind::Tls;
        }
        source = s.source();
    }
    if e.is_connect() {
        TransportKind::Connect
    } else if e.is_body() || e.is_decode() || e.is_request() {
        // The request was sent and the connection broke before the response was whole.
        TransportKind::Reset
    } else {
        TransportKind::Other
    }
}

/// One non-streaming attempt: send, read the body, parse it with `parse`.
///
/// The request (its client and the request as built) is handed to reqwest
/// before the future starts: neither is kept in it, so that the attempt's future (boxed once per
/// attempt) stays within the allocator's per-thread cache (`attempt_futures_stay_small`).
pub(crate) fn generate<'a>(
    ctx: CallContext,
    (client, request): (reqwest::Client, reqwest::Request),
    req: &'a ChatRequest,
    parse: fn(&[u8]) -> Result<Parsed, DecodeError>,
    finish: impl FnOnce(&mut ChatResponse) + Send + 'a,
) -> impl Future<Output = Result<ChatResponse, ProviderError>> + Send + 'a {
    generate_from(ctx, client.execute(request), req, parse, finish)
}

async fn generate_from(
    ctx: CallContext,
    sent: impl Future<Output = reqwest::Result<reqwest::Response>>,
    req: &ChatRequest,
    parse: fn(&[u8]) -> Result<Parsed, DecodeError>,
    finish: impl FnOnce(&mut ChatResponse),
) -> Result<ChatResponse, ProviderError> {
    // The request is built: on a multi-thread runtime, the tasks already
    // ready run before it is sent, so that steer's code (the replies handled,
    // the next requests built) and hyper's (the requests written) each run in
    // a row rather than alternating request by request.
    steer_actors::exec::scheduler::yield_on_multi_thread().await;
    let (body, headers) = {
        let mut response = send(&ctx, sent).await?;
        // Lent, not moved, and its headers read after: the response is kept once
        // in this future while its body comes (not here and in the read's, nor its
        // headers beside it: 464 bytes against 928).
        let read = read_body(&ctx, &mut response).await;
        // Moved out, not copied.
        let headers = std::mem::take(response.headers_mut());
        match read {
            Ok(body) => (body, headers),
            Err(e) => return Err(with_response(e, headers)),
        }
    };
    // Finished where it is made: the reply is returned once, not moved out,
    // finished and returned again by each layer above.
    reply_from(ctx, headers, &body, req, parse).map(|mut reply| {
        finish(&mut reply);
        reply
    })
}

/// The reply in a whole 2xx body, or the error of a body that is not one.
// The error's size: this returns into the attempt's future, whose output is
// this same `Result`; boxing it here would allocate only to move it back out.
#[allow(clippy::result_large_err)]
fn reply_from(
    ctx: CallContext,
    headers: HeaderMap,
    body: &[u8],
    req: &ChatRequest,
    parse: fn(&[u8]) -> Result<Parsed, DecodeError>,
) -> Result<ChatResponse, ProviderError> {
    let parsed = match parse(body) {
        Ok(parsed) => parsed,
        Err(DecodeError::Malformed(m)) => {
            let err = not_a_reply(&ctx, &headers, body, m);
            return Err(with_response(err, headers));
        }
        Err(DecodeError::InBand(body)) => {
            return Err(with_response(
                ctx.error(FailureKind::InBand { body }),
                headers,
            ))
        }
    };
    let rate_limit =
        crate::classify::wait::rate_limit_hints(&headers, std::time::SystemTime::now());
    let provider_request_id = provider_request_id(&headers);
    Ok(ChatResponse {
        rate_limit,
        route: Vec::new(),
        tool_calls: parsed.tool_calls,
        reasoning: parsed.reasoning,
        text: parsed.text,
        finish_reason: parsed.finish_reason,
        usage: parsed.usage,
        provider: ctx.provider,
        model: parsed
            .model
            .unwrap_or_else(|| req.model.model().to_string()),
        request_id: req.request_id.clone(),
        provider_request_id,
        response_id: parsed.id,
        spend: Default::default(),
    })
}

/// The error of a 2xx body that is not a reply: whole and valid JSON yet not
/// a reply, or not JSON at all (a proxy's page), the server will say again (a
/// wrong shape); JSON cut short may be a passing fault (malformed).
#[cold]
fn not_a_reply(ctx: &CallContext, headers: &HeaderMap, body: &[u8], m: String) -> ProviderError {
    let says_json = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|v| v.to_ascii_lowercase().contains("json"));
    let readable = serde_json::from_slice::<serde::de::IgnoredAny>(body).is_ok();
    if readable || !says_json {
        ctx.error(FailureKind::WrongShape {
            message: ctx.scrub(m),
        })
    } else {
        ctx.malformed(m)
    }
}

/// One streaming attempt: send, then decode the SSE body with `decoder` (the
/// request handed to reqwest before the future starts, as in [`generate`]).
pub(crate) fn stream<'a, D: StreamDecoder + 'a>(
    ctx: CallContext,
    (client, request): (reqwest::Client, reqwest::Request),
    req: &'a ChatRequest,
    decoder: D,
) -> impl Future<Output = Result<EventStream, ProviderError>> + Send + 'a {
    stream_from(ctx, client.execute(request), req, decoder)
}

async fn stream_from<D: StreamDecoder>(
    ctx: CallContext,
    sent: impl Future<Output = reqwest::Result<reqwest::Response>>,
    req: &ChatRequest,
    decoder: D,
) -> Result<EventStream, ProviderError> {
    let response = send(&ctx, sent).await?;
    if !is_event_stream(response.headers()) {
        // A 2xx that is not an event stream: a whole reply (a server or gateway
        // that ignores `stream: true`), a proxy's answer, or an error object.
        return Box::pin(not_a_stream(&ctx, req, response, decoder.whole_reply())).await;
    }
    Ok(sse_stream(ctx, req, response, decoder))
}

/// Whether a response to a streaming request says it is an event stream (or
/// says nothing: such servers exist, and the framer judges the body).
fn is_event_stream(headers: &HeaderMap) -> bool {
    match headers.get(http::header::CONTENT_TYPE) {
        None => true,
        Some(v) => v
            .to_str()
            .is_ok_and(|v| v.to_ascii_lowercase().contains("event-stream")),
    }
}

/// A streaming request answered with something else: a whole reply in the
/// format (LiteLLM's `/v1/messages` ignores `stream: true` for some models)
/// is a stream of that one reply; otherwise the failure: the error it carries
/// (in-band, classified by its body), else a malformed response.
async fn not_a_stream(
    ctx: &CallContext,
    req: &ChatRequest,
    mut response: reqwest::Response,
    whole_reply: Option<crate::wire::ParseReply>,
) -> Result<EventStream, ProviderError> {
    let provider_request_id = provider_request_id(response.headers());
    let headers = classifier_headers(response.headers());
    let content_type = response
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| crate::fold::truncate_chars(v, 60))
        .unwrap_or_default();
    let parse = whole_reply.filter(|_| content_type.to_ascii_lowercase().contains("json"));
    let body = match parse {
        // Read as a reply is (up to its limit, not an error body's).
        Some(_) => match read_body(ctx, &mut response).await {
            Ok(body) => body,
            Err(mut e) => {
                e.provider_request_id = provider_request_id;
                e.headers = headers;
                return Err(e);
            }
        },
        None => read_error_body(ctx, response).await,
    };
    if let Some(reply) = parse.and_then(|parse| parse(&body).ok()) {
        let mut events = vec![ProviderEvent::Start {
            request_id: req.request_id.clone(),
            provider: ctx.provider.clone(),
            model: req.model.model().to_string(),
            provider_request_id,
        }];
        events.extend(crate::wire::events_of_reply_stopped(reply, &req.stop));
        return Ok(Box::pin(futures::stream::iter(events.into_iter().map(Ok))));
    }
    // Not a reply: what it says goes into the error, the key scrubbed out.
    let body = match (&ctx.api_key, parse) {
        (Some(key), Some(_)) => Bytes::from(key.scrub_bytes(&body).into_owned()),
        _ => body,
    };
    let kind = if crate::wire::carries_error(&body) {
        FailureKind::InBand {
            body: String::from_utf8_lossy(&body).into_owned(),
        }
    } else {
        FailureKind::WrongShape {
            message: format!(
                "a streaming request was answered with {}, not an event stream: {}",
                content_type,
                crate::error::body_summary(&body)
            ),
        }
    };
    let mut err = ctx.error(kind);
    err.provider_request_id = provider_request_id;
    err.headers = headers;
    Err(err)
}

fn sse_stream<D: StreamDecoder>(
    ctx: CallContext,
    req: &ChatRequest,
    response: reqwest::Response,
    decoder: D,
) -> EventStream {
    let start = ProviderEvent::Start {
        request_id: req.request_id.clone(),
        provider: ctx.provider.clone(),
        model: req.model.model().to_string(),
        provider_request_id: provider_request_id(response.headers()),
    };
    decode_sse(ctx, response, decoder, start)
}

/// Decodes a successful SSE response you obtained yourself (a custom provider, a
/// test) into steer's stream events: `Start`, then whatever `decoder` makes of each
/// event. The stream ends after `Complete` or with exactly one error; a body that
/// ends without the terminal event is [`FailureKind::Incomplete`].
///
/// ```
/// # async fn demo(response: reqwest::Response) {
/// use steer_llm::{provider::http::decode_response, wire::openai::Decoder, ChatRequest};
/// let req = ChatRequest::new("openai/gpt-4o-mini").unwrap().user("hi");
/// let events = decode_response("openai", &req, response, Decoder::default());
/// # let _ = events; }
/// ```
pub fn decode_response<D: StreamDecoder>(
    provider: &str,
    req: &ChatRequest,
    response: reqwest::Response,
    decoder: D,
) -> EventStream {
    let ctx = CallContext {
        provider: provider.to_string(),
        request_id: req.request_id.clone(),
        api_key: None,
        max_event_bytes: DEFAULT_MAX_EVENT_BYTES,
    };
    sse_stream(ctx, req, response, decoder)
}

#[cfg(test)]
mod attempt_future_size {
    use crate::provider::{Anthropic, OpenAiCompatible, Provider};
    use crate::ChatRequest;

    /// The attempt's future is boxed once per attempt: at most 1,024 bytes it
    /// comes from glibc's per-thread cache, above it from the shared arena under
    /// its lock, which two workers freeing each other's memory contend for (the
    /// provider's future was 1,904 bytes; measured in BENCHMARKS.md).
    #[test]
    fn attempt_futures_stay_small() {
        let openai = OpenAiCompatible::custom("p", "http://127.0.0.1:9/v1")
            .api_key("k")
            .build()
            .expect("provider");
        let anthropic = Anthropic::builder()
            .base_url("http://127.0.0.1:9")
            .api_key("k")
            .build()
            .expect("provider");
        let req = ChatRequest::new("p/m").expect("model").user("hi");
        let providers: [&dyn Provider; 2] = [&openai, &anthropic];
        for p in providers {
            let generate = p.generate(&req);
            let stream = p.stream(&req);
            let (g, s) = (
                std::mem::size_of_val(&*generate),
                std::mem::size_of_val(&*stream),
            );
            // Kept while the request runs: 464 bytes (928 with the response
            // moved into the body's read).
            assert!(g <= 640, "{}: generate's future is {g} bytes", p.name());
            assert!(s <= 1024, "{}: stream's future is {s} bytes", p.name());
        }
    }
}
