//! The one HTTP provider: an endpoint and a [`WireFormat`]. OpenAI, xAI, any
//! OpenAI-compatible server and Anthropic are this type over their format;
//! a new API is a new format, not a new provider.

use ::http::header::{ACCEPT, CONTENT_TYPE};
use ::http::{HeaderMap, HeaderName, HeaderValue, Method};

use super::endpoint::{Endpoint, EndpointBuilder};
use super::format::WireFormat;
use super::http::{self, CallContext};
use super::{EventStream, Provider};
use crate::error::{Error, FailureKind, ProviderError};
use crate::model::{ChatRequest, ChatResponse, ResumePoint};
use crate::prefill::Prefill;

/// steer's id of the request, sent with every call to the provider.
const CLIENT_REQUEST_ID: HeaderName = HeaderName::from_static("x-client-request-id");

/// Longest name (a response id, a deployment) steer puts in a URL's path.
const MAX_RESPONSE_ID: usize = 256;

/// Whether `name` may be one segment of a URL's path as it is: not empty, not
/// too long, only letters, digits, `-`, `_` and the bytes of `also`. Both
/// names that go there come from outside (the server's stream, the caller's
/// model id).
fn plain_segment(name: &str, also: &[u8]) -> bool {
    !name.is_empty()
        && name.len() <= MAX_RESPONSE_ID
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || also.contains(&b))
}

/// `req`'s id as a header's value, sharing the id's text: reqwest clones a
/// request's headers to send it, and a copied value would be copied again
/// then. `None` for an id a header cannot carry (a caller's id with a line
/// break or another control character).
fn request_id_header(req: &ChatRequest) -> Option<HeaderValue> {
    /// The id's text, as the bytes of a header's value.
    struct IdText(std::sync::Arc<str>);
    impl AsRef<[u8]> for IdText {
        fn as_ref(&self) -> &[u8] {
            self.0.as_bytes()
        }
    }
    let text = bytes::Bytes::from_owner(IdText(req.request_id.shared()));
    HeaderValue::from_maybe_shared(text).ok()
}

/// A provider reached over HTTP in one API's wire format `F`. Name it by its
/// aliases: [`OpenAiCompatible`](super::OpenAiCompatible) and
/// [`Anthropic`](super::Anthropic).
#[derive(Clone)]
pub struct HttpProvider<F: WireFormat> {
    endpoint: Endpoint,
    format: F,
}

/// Builds an [`HttpProvider`]: where it lives, how it authenticates, and its
/// format's own settings.
#[derive(Clone)]
pub struct HttpProviderBuilder<F: WireFormat> {
    endpoint: EndpointBuilder,
    pub(crate) format: F,
}

impl<F: WireFormat> std::fmt::Debug for HttpProvider<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct(F::NAME)
            .field("name", &self.endpoint.name)
            .field("base_url", &self.endpoint.base_url)
            .field("api_key", &self.endpoint.api_key)
            .field("format", &self.format)
            .finish()
    }
}

impl<F: WireFormat> std::fmt::Debug for HttpProviderBuilder<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct(&format!("{}Builder", F::NAME))
            .field("endpoint", &self.endpoint)
            .field("format", &self.format)
            .finish()
    }
}

impl<F: WireFormat> HttpProvider<F> {
    /// The base URL requests go to.
    pub fn base_url(&self) -> &str {
        &self.endpoint.base_url
    }

    fn context(&self, req: &ChatRequest) -> CallContext {
        self.endpoint.context(req)
    }

    /// `req` as its API's request: its body, then the HTTP request and the
    /// client (of the runtime that calls) to send it with.
    fn request(
        &self,
        req: &ChatRequest,
        stream: bool,
    ) -> Result<(reqwest::Client, reqwest::Request), Box<ProviderError>> {
        let body = self.format.body(req, stream).map_err(|message| {
            Box::new(self.context(req).error(FailureKind::Invalid { message }))
        })?;
        let url = self.url_for(req)?;
        self.http_request(Method::POST, url, req, Some(body), stream)
    }

    /// An HTTP request for `req` (a body is JSON; `events` asks for a stream of
    /// server-sent events), its headers set in place: the format's, steer's id
    /// of the request, the key, then the request's own. A header's name is a
    /// constant and its value shares the text it comes from (neither copied
    /// nor parsed on every request, nor copied again when reqwest clones the
    /// headers to send them).
    fn http_request(
        &self,
        method: Method,
        url: reqwest::Url,
        req: &ChatRequest,
        body: Option<Vec<u8>>,
        events: bool,
    ) -> Result<(reqwest::Client, reqwest::Request), Box<ProviderError>> {
        let id = request_id_header(req).ok_or_else(|| {
            self.invalid(
                req,
                format!(
                    "the request id {:?} cannot be sent as an HTTP header (x-client-request-id): \
                     use visible ASCII",
                    crate::wire::snippet(req.request_id.as_str())
                ),
            )
        })?;
        let mut request = reqwest::Request::new(method, url);
        let headers = request.headers_mut();
        self.format.headers(headers);
        headers.insert(CLIENT_REQUEST_ID, id);
        if body.is_some() {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        }
        if events {
            headers.insert(ACCEPT, HeaderValue::from_static("text/event-stream"));
        }
        self.authorise(headers, req);
        *request.body_mut() = body.map(reqwest::Body::from);
        Ok((self.endpoint.http.current(), request))
    }

    /// The URL of a request: the endpoint's, or on Azure's dated API the
    /// deployment's (a model named only of letters, digits, `-`, `_` and `.`),
    /// with its `api-version`.
    fn url_for(&self, req: &ChatRequest) -> Result<reqwest::Url, Box<ProviderError>> {
        let Some(version) = &self.endpoint.api_version else {
            return Ok(self.endpoint.url.clone());
        };
        let model = req.model.model();
        let invalid = |message: String| self.invalid(req, message);
        if !plain_segment(model, b".") {
            return Err(invalid(format!(
                "{:?} is not an Azure deployment name",
                crate::wire::snippet(model)
            )));
        }
        let url = format!(
            "{}{}",
            self.endpoint.base_url,
            self.format.dated_path(model)
        );
        let mut url =
            reqwest::Url::parse(&url).map_err(|e| invalid(format!("the deployment's URL: {e}")))?;
        url.query_pairs_mut().append_pair("api-version", version);
        Ok(url)
    }

    /// `req`'s error for what it asks that steer will not send.
    fn invalid(&self, req: &ChatRequest, message: String) -> Box<ProviderError> {
        Box::new(self.context(req).error(FailureKind::Invalid { message }))
    }

    /// Adds the key and the request's own headers.
    fn authorise(&self, headers: &mut HeaderMap, req: &ChatRequest) {
        if let Some(key) = &self.endpoint.key_header {
            headers.append(self.format.key_header().0, key.clone());
        }
        http::extra_headers(headers, req);
    }

    /// The URL of stored response `id` (`{base}/responses/{id}{tail}`): only an
    /// id of letters, digits, `_` and `-` is put in a URL (it comes from the
    /// server's stream).
    fn response_url(
        &self,
        req: &ChatRequest,
        id: &str,
        tail: &str,
    ) -> Result<reqwest::Url, Box<ProviderError>> {
        let invalid = |message: String| self.invalid(req, message);
        if !plain_segment(id, b"") {
            return Err(invalid(format!(
                "the response id {:?} is not one steer puts in a URL",
                crate::wire::snippet(id)
            )));
        }
        let url = format!(
            "{}/{id}{tail}",
            self.endpoint.url.as_str().trim_end_matches('/')
        );
        let mut url =
            reqwest::Url::parse(&url).map_err(|e| invalid(format!("the response's URL: {e}")))?;
        if let Some(version) = &self.endpoint.api_version {
            url.query_pairs_mut().append_pair("api-version", version);
        }
        Ok(url)
    }
}

impl<F: WireFormat> HttpProviderBuilder<F> {
    pub(crate) fn new(endpoint: EndpointBuilder, format: F) -> Self {
        HttpProviderBuilder { endpoint, format }
    }

    /// Sets the API key (otherwise read from the provider's environment variable).
    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        self.endpoint.api_key = Some(crate::secret::ApiKey::new(key));
        self
    }

    /// Sets the base URL (otherwise the environment variable, then the public API).
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.endpoint.base_url = Some(url.into());
        self
    }

    /// Uses this reqwest client. Build it as steer builds its own
    /// ([`default_http_client`](crate::provider::http::default_http_client)):
    /// `retry(reqwest::retry::never())` (retries belong to the actors) and
    /// `redirect(reqwest::redirect::Policy::none())` (a client that follows
    /// redirects may carry the key's header to another origin).
    ///
    /// It is used as given from every runtime that calls, while steer's own
    /// default is one client per runtime: a reqwest client's pooled
    /// connections are tasks of the runtime that opened them, so a stream
    /// read on one runtime may wait on another that is idle or gone. Give a
    /// client only when one tokio runtime calls this provider.
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.endpoint.http = Some(client);
        self
    }

    /// Time allowed to connect, for the default HTTP client.
    pub fn connect_timeout(mut self, timeout: std::time::Duration) -> Self {
        self.endpoint.connect_timeout = timeout;
        self
    }

    /// Largest server-sent event accepted (default 1 MiB): a bigger one fails
    /// the attempt as a malformed response instead of growing memory.
    pub fn max_event_bytes(mut self, bytes: usize) -> Self {
        self.endpoint.max_event_bytes = bytes.max(1);
        self
    }

    /// Allows a plain `http://` base URL to a host other than this machine,
    /// which sends the API key in clear text (default: refused at build).
    pub fn allow_insecure_http(mut self, allow: bool) -> Self {
        self.endpoint.allow_insecure_http = allow;
        self
    }

    /// Registers the provider under another name.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.endpoint.name = name.into();
        self
    }

    /// Resolves key, base URL and HTTP client.
    pub fn build(self) -> Result<HttpProvider<F>, Error> {
        let (_, key_prefix) = self.format.key_header();
        Ok(HttpProvider {
            endpoint: self.endpoint.resolve(self.format.path(), key_prefix)?,
            format: self.format,
        })
    }
}

#[async_trait::async_trait]
impl<F: WireFormat> Provider for HttpProvider<F> {
    fn name(&self) -> &str {
        &self.endpoint.name
    }

    fn check(&self, req: &ChatRequest) -> Result<(), String> {
        if req.is_plain() {
            return Ok(());
        }
        self.format.check(req)
    }

    fn prefill(&self, model: &str) -> Prefill {
        self.format.prefill(model)
    }

    async fn generate(&self, req: &ChatRequest) -> Result<ChatResponse, ProviderError> {
        // In statements of their own: a temporary of the awaiting statement
        // would be kept in the future beside the attempt's.
        let request = self.request(req, false).map_err(|e| *e)?;
        let finish = |reply: &mut ChatResponse| self.format.finish_reply(req, reply);
        let attempt = http::generate(
            self.context(req),
            request,
            req,
            self.format.parse_reply(),
            finish,
        );
        attempt.await
    }

    async fn stream(&self, req: &ChatRequest) -> Result<EventStream, ProviderError> {
        let request = self.request(req, true).map_err(|e| *e)?;
        let attempt = http::stream(self.context(req), request, req, self.format.decoder(req));
        attempt.await
    }

    async fn resume(
        &self,
        req: &ChatRequest,
        point: &ResumePoint,
    ) -> Result<EventStream, ProviderError> {
        if !self.format.resumes() {
            let message = format!("the {} API has no server-side resume", F::NAME);
            return Err(*self.invalid(req, message));
        }
        let decoder = self.format.resume_decoder(req, point);
        let mut url = self
            .response_url(req, &point.response_id, "")
            .map_err(|e| *e)?;
        url.query_pairs_mut()
            .append_pair("stream", "true")
            .append_pair("starting_after", &point.after.to_string());
        let request = self
            .http_request(Method::GET, url, req, None, true)
            .map_err(|e| *e)?;
        let attempt = http::stream(self.context(req), request, req, decoder);
        attempt.await
    }

    async fn cancel(&self, req: &ChatRequest, response_id: &str) -> Result<(), ProviderError> {
        if !self.format.resumes() {
            return Ok(());
        }
        let url = self
            .response_url(req, response_id, "/cancel")
            .map_err(|e| *e)?;
        let (client, request) = self
            .http_request(Method::POST, url, req, None, false)
            .map_err(|e| *e)?;
        http::send(&self.context(req), client.execute(request))
            .await
            .map(drop)
    }
}

#[cfg(test)]
mod tests {
    use crate::provider::{Anthropic, OpenAiCompatible, Provider, WireFormat};
    use crate::Prefill;

    #[test]
    fn each_format_gives_its_path_key_header_debug_name_and_prefill() {
        let openai = OpenAiCompatible::custom("local", "http://127.0.0.1:9/v1")
            .api_key("k")
            .prefill(Prefill::PrefixFlag)
            .build()
            .expect("provider");
        assert_eq!(
            openai.endpoint.url.as_str(),
            "http://127.0.0.1:9/v1/chat/completions"
        );
        assert_eq!(
            openai
                .endpoint
                .key_header
                .as_ref()
                .and_then(|h| h.to_str().ok()),
            Some("Bearer k")
        );
        assert!(format!("{openai:?}").starts_with("OpenAiCompatible {"));
        assert_eq!(openai.prefill("any"), Prefill::PrefixFlag);

        let claude = Anthropic::builder()
            .base_url("http://127.0.0.1:9/")
            .api_key("k")
            .build()
            .expect("provider");
        assert_eq!(
            claude.endpoint.url.as_str(),
            "http://127.0.0.1:9/v1/messages"
        );
        assert_eq!(
            claude
                .endpoint
                .key_header
                .as_ref()
                .and_then(|h| h.to_str().ok()),
            Some("k")
        );
        assert_eq!(claude.format.key_header().0.as_str(), "x-api-key");
        assert!(format!("{claude:?}").starts_with("Anthropic {"));
        assert_eq!(claude.prefill("claude-sonnet-4-5"), Prefill::Trailing);
        assert_eq!(claude.prefill("claude-opus-4-6"), Prefill::None);
        assert_eq!(claude.name(), "anthropic");
    }

    /// A response id comes from the server's stream: only a plain one is put
    /// in a URL (a path or a query in it would reach another resource).
    #[test]
    fn only_a_plain_response_id_makes_a_url() {
        let provider = crate::provider::OpenAiResponses::custom("r", "http://127.0.0.1:9/v1/")
            .api_key("k")
            .build()
            .expect("provider");
        let req = crate::ChatRequest::new("r/m").expect("model");
        let url = provider
            .response_url(&req, "resp_AB-12", "/cancel")
            .expect("a plain id");
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:9/v1/responses/resp_AB-12/cancel"
        );
        let long = "r".repeat(super::MAX_RESPONSE_ID + 1);
        for hostile in [
            "", "../admin", "resp?x=1", "resp/1", "resp%2F", "résp", "a b", &long,
        ] {
            let err = provider.response_url(&req, hostile, "").expect_err(hostile);
            assert!(
                matches!(err.kind, crate::FailureKind::Invalid { .. }),
                "{hostile}"
            );
        }
    }

    /// Every request carries its format's headers, steer's id of it, its body's
    /// type, the key (marked sensitive: never printed) and then the caller's
    /// own headers; a stream asks for events.
    #[test]
    fn a_request_carries_its_headers() {
        let claude = Anthropic::builder()
            .base_url("http://127.0.0.1:9/")
            .api_key("k")
            .build()
            .expect("provider");
        let req = crate::ChatRequest::new("anthropic/claude-sonnet-4-5")
            .expect("model")
            .user("hi")
            .request_id("id-1")
            .extra_header("x-team", "a")
            .extra_header("x-team", "b");
        for stream in [false, true] {
            let (_, request) = claude.request(&req, stream).expect("a request");
            let h = request.headers();
            let text = |name: &str| h.get(name).and_then(|v| v.to_str().ok());
            assert_eq!(request.method(), ::http::Method::POST);
            assert_eq!(
                text("anthropic-version"),
                Some(super::super::anthropic::ANTHROPIC_VERSION)
            );
            assert_eq!(text("x-client-request-id"), Some("id-1"));
            assert_eq!(text("content-type"), Some("application/json"));
            assert_eq!(text("x-api-key"), Some("k"));
            assert!(h.get("x-api-key").is_some_and(|v| v.is_sensitive()));
            let teams: Vec<_> = h.get_all("x-team").iter().collect();
            assert_eq!(teams, ["a", "b"], "the caller's headers, each value kept");
            assert_eq!(h.len(), 6 + usize::from(stream), "{h:?}");
            assert_eq!(text("accept"), stream.then_some("text/event-stream"));
            assert!(request
                .body()
                .and_then(|b| b.as_bytes())
                .is_some_and(|b| !b.is_empty()));
        }
    }

    /// A caller's request id that a header cannot carry is the request's own
    /// error, before anything is sent: not a transport failure to retry.
    #[tokio::test]
    async fn a_request_id_a_header_cannot_carry_is_invalid() {
        let openai = OpenAiCompatible::custom("local", "http://127.0.0.1:9/v1")
            .api_key("k")
            .build()
            .expect("provider");
        for hostile in ["line\nbreak", "nul\0", "del\u{7f}", "tab\tok"] {
            let req = crate::ChatRequest::new("local/m")
                .expect("model")
                .user("hi")
                .request_id(hostile);
            if hostile.contains('\t') {
                // A tab is allowed inside a header's value.
                assert!(openai.request(&req, false).is_ok());
                continue;
            }
            let err = openai.generate(&req).await.expect_err(hostile);
            assert!(
                matches!(&err.kind, crate::FailureKind::Invalid { message } if message.contains("x-client-request-id")),
                "{hostile:?}: {err:?}"
            );
            let err = openai.stream(&req).await.err().expect(hostile);
            assert!(
                matches!(err.kind, crate::FailureKind::Invalid { .. }),
                "{hostile:?}"
            );
        }
    }

    /// Azure's dated API puts the deployment (the model's name) in the path and
    /// the version in the query: only a plain name makes a URL.
    #[test]
    fn a_dated_azure_url_names_a_plain_deployment_and_its_version() {
        let chat =
            crate::OpenAiCompatible::azure_dated("https://contoso.openai.azure.com/", "2024-10-21")
                .api_key("k")
                .build()
                .expect("provider");
        let req = |model: &str| crate::ChatRequest::new(&format!("azure/{model}")).expect("model");
        let url = chat.url_for(&req("gpt-4o.mini_2")).expect("a plain name");
        assert_eq!(
            url.as_str(),
            "https://contoso.openai.azure.com/openai/deployments/gpt-4o.mini_2/chat/completions?api-version=2024-10-21"
        );
        for hostile in ["..%2Fx", "a/../b", "m?x=1", "m#f", "mödel"] {
            let err = chat.url_for(&req(hostile)).expect_err(hostile);
            assert!(
                matches!(err.kind, crate::FailureKind::Invalid { .. }),
                "{hostile}"
            );
        }
        let responses = crate::provider::OpenAiResponses::azure_dated(
            "https://contoso.openai.azure.com",
            "2025-04-01-preview",
        )
        .api_key("k")
        .build()
        .expect("provider");
        assert_eq!(
            responses.url_for(&req("gpt-5")).expect("a name").as_str(),
            "https://contoso.openai.azure.com/openai/responses?api-version=2025-04-01-preview"
        );
        assert_eq!(
            responses.response_url(&req("gpt-5"), "resp_1", "/cancel").expect("an id").as_str(),
            "https://contoso.openai.azure.com/openai/responses/resp_1/cancel?api-version=2025-04-01-preview"
        );
    }
}
