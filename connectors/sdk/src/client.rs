//! The source HTTP client every connector uses: reqwest with rustls (plus extra root
//! certificates, since Russian state systems may use the Russian Trusted Root CA), a
//! governor limiter per endpoint class, timeouts, and bounded retries with exponential
//! backoff and jitter.
//!
//! Retry policy (as rustic's REST backend states its own): retry timeouts, broken
//! connections, cut-off bodies, 5xx and HTML error pages of a 5xx, and request-limit
//! answers (429, 433, or a body the connector classifies as the source's request-limit
//! error), honouring `Retry-After`; renew credentials once on 401; never retry other 4xx.
//! Every retry is logged as a warning. Errors name the source instance, the method and the
//! endpoint (the path, never the query string or a header), say what happened, and what to do.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use bytes::Bytes;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use reqwest::header::{HeaderName, HeaderValue, CONTENT_TYPE, RETRY_AFTER};
use reqwest::{Method, RequestBuilder, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use url::Url;

/// What went wrong talking to a source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The source refused the credentials (expired or revoked token).
    Unauthorized,
    /// The source's request limit, still hit after the bounded retries.
    RateLimited,
    /// 5xx, or an HTML error page, still failing after the bounded retries.
    Server,
    /// Another 4xx: our request is wrong for this source.
    Client,
    /// The body is not what the endpoint answers (malformed JSON, wrong shape).
    Malformed,
    /// The connection broke or the body was cut off, after the bounded retries.
    Transport,
    /// No answer in time, after the bounded retries.
    Timeout,
    /// The source is configured wrongly (bad URL, unreadable certificate, missing secret).
    Config,
}

/// An error talking to a source; its text names the source, the request and what to do.
#[derive(Debug, Clone, thiserror::Error, Serialize, Deserialize)]
#[error("source «{instance}» ({system}): {method} {endpoint}: {detail}{}", hint.as_ref().map(|h| format!(". {h}")).unwrap_or_default())]
pub struct SourceError {
    pub instance: String,
    pub system: String,
    pub method: String,
    pub endpoint: String,
    pub kind: ErrorKind,
    pub detail: String,
    pub hint: Option<String>,
}

impl SourceError {
    /// An error that is not about one request (configuration, planning).
    pub fn config(instance: &str, system: &str, detail: impl Into<String>) -> Self {
        SourceError {
            instance: instance.into(),
            system: system.into(),
            method: "-".into(),
            endpoint: "-".into(),
            kind: ErrorKind::Config,
            detail: detail.into(),
            hint: None,
        }
    }
}

/// How the connector reads its source's error bodies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Classified {
    pub kind: ErrorKind,
    /// The source's own message, for the person reading the error.
    pub message: String,
}

/// Turns a source's error answer into a kind. Classify by body first, status second: some
/// systems answer their request-limit error with a status that is not public.
pub trait ErrorClassifier: Send + Sync {
    fn classify(&self, status: StatusCode, body: &[u8]) -> Option<Classified>;
}

/// Adds credentials to requests, and renews them when the source refuses them.
#[async_trait]
pub trait Authenticator: Send + Sync {
    async fn authorize(&self, request: RequestBuilder) -> Result<RequestBuilder, String>;

    /// Called once after a 401: `Ok(true)` when the credentials were renewed and the
    /// request may be sent again.
    async fn renew(&self) -> Result<bool, String> {
        Ok(false)
    }

    /// What the operator must do when the source refuses the credentials.
    fn unauthorized_hint(&self) -> String {
        "The source refused the token: supply a fresh one and run the sync again".into()
    }
}

/// A fixed token sent in one header (Dnevnik's `Access-Token`). The header value is marked
/// sensitive, so neither reqwest nor hyper print it.
pub struct HeaderToken {
    header: HeaderName,
    token: SecretString,
    hint: String,
}

impl HeaderToken {
    pub fn new(header: &'static str, token: SecretString, hint: impl Into<String>) -> Self {
        HeaderToken { header: HeaderName::from_static(header), token, hint: hint.into() }
    }
}

#[async_trait]
impl Authenticator for HeaderToken {
    async fn authorize(&self, request: RequestBuilder) -> Result<RequestBuilder, String> {
        let mut value = HeaderValue::from_str(self.token.expose_secret())
            .map_err(|_| "the token holds characters that cannot go into an HTTP header".to_string())?;
        value.set_sensitive(true);
        Ok(request.header(self.header.clone(), value))
    }

    fn unauthorized_hint(&self) -> String {
        self.hint.clone()
    }
}

/// The retry policy of one source.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RetryPolicy {
    /// Attempts for transient failures (timeouts, 5xx, broken bodies), the first included.
    pub max_attempts: u32,
    /// Attempts when the source answers with its request limit.
    pub max_rate_limited_attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 4,
            max_rate_limited_attempts: 12,
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(30),
        }
    }
}

/// Everything the client needs to know of one source instance.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    pub instance: String,
    pub system: &'static str,
    /// Ends with `/`; request paths are relative to it.
    pub base_url: Url,
    pub timeout: Duration,
    pub extra_root_certificates: Vec<PathBuf>,
    /// Requests per second allowed for an endpoint class when `rate_limits` does not name it.
    pub default_rate: Option<NonZeroU32>,
    /// Requests per second per endpoint class (`data`, `reference`, `auth`, …).
    pub rate_limits: HashMap<String, NonZeroU32>,
    pub retry: RetryPolicy,
}

impl ClientConfig {
    pub fn new(instance: &str, system: &'static str, base_url: Url) -> Self {
        ClientConfig {
            instance: instance.into(),
            system,
            base_url,
            timeout: Duration::from_secs(60),
            extra_root_certificates: Vec::new(),
            default_rate: None,
            rate_limits: HashMap::new(),
            retry: RetryPolicy::default(),
        }
    }
}

/// Counters of one client, for run statistics and metrics.
#[derive(Debug, Default)]
pub struct ClientStats {
    pub requests: AtomicU64,
    pub retries: AtomicU64,
    pub rate_limited: AtomicU64,
    /// Requests that waited for the request limit (ours or the source's hold-back) before
    /// they were sent; `rate_limit_wait_micros` is how long they waited in all.
    pub rate_limit_waits: AtomicU64,
    pub rate_limit_wait_micros: AtomicU64,
}

/// An answer with the source's clock.
#[derive(Debug, Clone)]
pub struct Response<T> {
    pub body: T,
    /// The HTTP `Date` header: the source's "now".
    pub date: Option<SystemTime>,
}

/// The rate-limited, retrying HTTP client of one source instance.
pub struct SourceClient {
    config: ClientConfig,
    http: reqwest::Client,
    auth: Arc<dyn Authenticator>,
    classifier: Arc<dyn ErrorClassifier>,
    limiters: HashMap<String, Arc<DefaultDirectRateLimiter>>,
    default_limiter: Option<Arc<DefaultDirectRateLimiter>>,
    /// Until when every request of this client holds back, after the source answered with
    /// its request limit (see [`SourceClient::hold_back`]).
    paused_until: std::sync::Mutex<Option<tokio::time::Instant>>,
    stats: Arc<ClientStats>,
}

impl SourceClient {
    pub fn new(
        config: ClientConfig,
        auth: Arc<dyn Authenticator>,
        classifier: Arc<dyn ErrorClassifier>,
    ) -> Result<Self, SourceError> {
        let fail = |detail: String| SourceError::config(&config.instance, config.system, detail);
        let mut builder = reqwest::Client::builder()
            .user_agent(concat!("ejgate/", env!("CARGO_PKG_VERSION")))
            .timeout(config.timeout)
            .connect_timeout(Duration::from_secs(15).min(config.timeout))
            .pool_max_idle_per_host(16);
        for path in &config.extra_root_certificates {
            let pem = std::fs::read(path)
                .map_err(|e| fail(format!("cannot read the root certificate {}: {e}", path.display())))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| fail(format!("{} is not a PEM certificate bundle: {e}", path.display())))?;
            // A file with no certificate in it (DER, a key, a wrong file) parses as an
            // empty bundle: say so instead of connecting without the certificate.
            if certs.is_empty() {
                return Err(fail(format!(
                    "{} holds no PEM certificate (a block «-----BEGIN CERTIFICATE-----»); a DER file converts \
                     with `openssl x509 -inform der -in FILE -out FILE.pem`",
                    path.display()
                )));
            }
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        let http = builder.build().map_err(|e| fail(format!("cannot build the HTTP client: {e}")))?;
        let limiter = |rate: NonZeroU32| {
            // Burst 1: requests are spread evenly, so a source that counts per second
            // never sees more than the rate in any window.
            Arc::new(RateLimiter::direct(Quota::per_second(rate).allow_burst(NonZeroU32::MIN)))
        };
        let limiters = config.rate_limits.iter().map(|(class, rate)| (class.clone(), limiter(*rate))).collect();
        let default_limiter = config.default_rate.map(limiter);
        Ok(SourceClient {
            config,
            http,
            auth,
            classifier,
            limiters,
            default_limiter,
            paused_until: std::sync::Mutex::new(None),
            stats: Arc::new(ClientStats::default()),
        })
    }

    pub fn instance(&self) -> &str {
        &self.config.instance
    }

    pub fn stats(&self) -> &Arc<ClientStats> {
        &self.stats
    }

    /// GET `path` (relative to the base URL) and parse the JSON answer into `T`.
    pub async fn get_json<T: DeserializeOwned>(
        &self,
        class: &str,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<Response<T>, SourceError> {
        let raw = self.send(Method::GET, class, path, query, None).await?;
        self.parse(Method::GET, path, raw)
    }

    /// POST a JSON body to `path` and parse the JSON answer into `T`.
    pub async fn post_json<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        class: &str,
        path: &str,
        body: &B,
    ) -> Result<Response<T>, SourceError> {
        let bytes = serde_json::to_vec(body).expect("request bodies serialize");
        let raw = self.send(Method::POST, class, path, &[], Some(bytes)).await?;
        self.parse(Method::POST, path, raw)
    }

    /// Sends a request with limits and retries; returns the raw body of a 2xx answer.
    pub async fn send(
        &self,
        method: Method,
        class: &str,
        path: &str,
        query: &[(&str, String)],
        body: Option<Vec<u8>>,
    ) -> Result<Response<Bytes>, SourceError> {
        let url = self
            .config
            .base_url
            .join(path)
            .map_err(|e| self.error(&method, path, ErrorKind::Config, format!("bad path: {e}"), None))?;
        let retry = &self.config.retry;
        let mut attempt = 0u32;
        let mut limited_attempt = 0u32;
        let mut renewed = false;
        loop {
            self.wait_for_limit(class).await;
            self.stats.requests.fetch_add(1, Ordering::Relaxed);
            let started = Instant::now();
            let mut request = self.http.request(method.clone(), url.clone());
            if !query.is_empty() {
                request = request.query(query);
            }
            if let Some(body) = &body {
                request = request.header(CONTENT_TYPE, "application/json").body(body.clone());
            }
            let request = self
                .auth
                .authorize(request)
                .await
                .map_err(|e| self.error(&method, path, ErrorKind::Config, e, None))?;
            let outcome = self.attempt(request).await;
            tracing::debug!(source = %self.config.instance, %method, endpoint = path, elapsed_ms = started.elapsed().as_millis() as u64, ok = outcome.is_ok(), "request");
            let failure = match outcome {
                Ok(response) => return Ok(response),
                Err(failure) => failure,
            };
            let (kind, detail, retry_after) = match failure {
                Failure::Status { status, content_type, body, retry_after } => {
                    let (kind, detail) = self.describe(status, content_type.as_deref(), &body);
                    (kind, detail, retry_after)
                }
                Failure::Timeout => {
                    (ErrorKind::Timeout, format!("no answer within {} s", self.config.timeout.as_secs()), None)
                }
                Failure::Transport(detail) => (ErrorKind::Transport, detail, None),
            };
            let delay = match kind {
                ErrorKind::RateLimited => {
                    self.stats.rate_limited.fetch_add(1, Ordering::Relaxed);
                    limited_attempt += 1;
                    if limited_attempt >= retry.max_rate_limited_attempts {
                        return Err(self.error(&method, path, kind, detail, Some("The source keeps answering with its request limit: lower requests_per_second for this source".into())));
                    }
                    let delay = retry_after.unwrap_or_else(|| backoff(retry, limited_attempt));
                    self.hold_back(delay);
                    delay
                }
                ErrorKind::Unauthorized if !renewed => {
                    renewed = true;
                    match self.auth.renew().await {
                        Ok(true) => continue,
                        Ok(false) => {
                            return Err(self.error(&method, path, kind, detail, Some(self.auth.unauthorized_hint())))
                        }
                        Err(e) => {
                            return Err(self.error(
                                &method,
                                path,
                                kind,
                                format!("{detail}; renewing the credentials failed: {e}"),
                                Some(self.auth.unauthorized_hint()),
                            ))
                        }
                    }
                }
                ErrorKind::Unauthorized => {
                    return Err(self.error(&method, path, kind, detail, Some(self.auth.unauthorized_hint())))
                }
                ErrorKind::Server | ErrorKind::Transport | ErrorKind::Timeout => {
                    attempt += 1;
                    if attempt >= retry.max_attempts {
                        return Err(self.error(
                            &method,
                            path,
                            kind,
                            format!("{detail} (after {attempt} attempts)"),
                            Some("The source is failing; the next run resumes from the last committed batch".into()),
                        ));
                    }
                    retry_after.unwrap_or_else(|| backoff(retry, attempt))
                }
                _ => return Err(self.error(&method, path, kind, detail, None)),
            };
            self.stats.retries.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(source = %self.config.instance, %method, endpoint = path, kind = ?kind, delay_ms = delay.as_millis() as u64, "{detail}; retrying");
            tokio::time::sleep(delay).await;
        }
    }

    /// The source answered with its request limit: every request of this client waits
    /// `delay` before its next attempt, not only the refused one. Requests that retried
    /// each on its own clock kept the source at its limit (with sixteen requests in flight,
    /// as «Моя школа» has, most attempts were refused again); holding
    /// all of them back gives the source's window time to empty.
    fn hold_back(&self, delay: Duration) {
        let until = tokio::time::Instant::now() + delay;
        let mut paused = self.paused_until.lock().unwrap_or_else(|e| e.into_inner());
        if paused.is_none_or(|p| p < until) {
            *paused = Some(until);
        }
    }

    async fn wait_for_limit(&self, class: &str) {
        let paused = *self.paused_until.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(until) = paused.filter(|u| *u > tokio::time::Instant::now()) {
            self.stats.rate_limit_waits.fetch_add(1, Ordering::Relaxed);
            let started = Instant::now();
            tokio::time::sleep_until(until).await;
            self.stats.rate_limit_wait_micros.fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
        }
        let limiter = self.limiters.get(class).or(self.default_limiter.as_ref());
        if let Some(limiter) = limiter {
            if limiter.check().is_err() {
                self.stats.rate_limit_waits.fetch_add(1, Ordering::Relaxed);
                let started = Instant::now();
                limiter.until_ready().await;
                self.stats.rate_limit_wait_micros.fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
            }
        }
    }

    async fn attempt(&self, request: RequestBuilder) -> Result<Response<Bytes>, Failure> {
        let response = request.send().await.map_err(Failure::from_reqwest)?;
        let status = response.status();
        let date = response
            .headers()
            .get(reqwest::header::DATE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| httpdate::parse_http_date(v).ok());
        let content_type = response.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_string);
        let retry_after = response.headers().get(RETRY_AFTER).and_then(|v| v.to_str().ok()).and_then(parse_retry_after);
        let body = response.bytes().await.map_err(|e| {
            if e.is_timeout() {
                Failure::Timeout
            } else {
                Failure::Transport(format!("the answer was cut off before its end ({})", error_chain(&e)))
            }
        })?;
        if status.is_success() {
            if is_html(content_type.as_deref(), &body) {
                return Err(Failure::Status { status: StatusCode::BAD_GATEWAY, content_type, body, retry_after });
            }
            Ok(Response { body, date })
        } else {
            Err(Failure::Status { status, content_type, body, retry_after })
        }
    }

    /// Classifies a non-2xx answer (or an HTML page where JSON was due).
    fn describe(&self, status: StatusCode, content_type: Option<&str>, body: &[u8]) -> (ErrorKind, String) {
        if is_html(content_type, body) {
            let message = html_message(body).unwrap_or_default();
            let kind = if status == StatusCode::UNAUTHORIZED { ErrorKind::Unauthorized } else { ErrorKind::Server };
            return (
                kind,
                format!("the source answered an HTML page (HTTP {}) instead of JSON: «{message}»", status.as_u16()),
            );
        }
        if let Some(c) = self.classifier.classify(status, body) {
            return (c.kind, format!("HTTP {}: {}", status.as_u16(), c.message));
        }
        let kind = match status.as_u16() {
            401 | 403 => ErrorKind::Unauthorized,
            429 | 433 => ErrorKind::RateLimited,
            500..=599 => ErrorKind::Server,
            _ => ErrorKind::Client,
        };
        let text = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
        (kind, format!("HTTP {}: {}", status.as_u16(), text.trim()))
    }

    fn parse<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        raw: Response<Bytes>,
    ) -> Result<Response<T>, SourceError> {
        let body = self.parse_body(&method, path, &raw.body)?;
        Ok(Response { body, date: raw.date })
    }

    /// Parses the raw body of an answer from `path` (see [`SourceClient::send`]) into `T`,
    /// which may borrow from it: a connector that reads a large answer in steps keeps the
    /// body and parses only what it needs, with the same error a `get_json` would give.
    pub fn parse_body<'a, T: Deserialize<'a>>(
        &self,
        method: &Method,
        path: &str,
        body: &'a [u8],
    ) -> Result<T, SourceError> {
        serde_json::from_slice::<T>(body).map_err(|e| {
            let what = if e.is_eof() {
                "the JSON answer ends too early"
            } else {
                "the answer is not the JSON this endpoint gives"
            };
            self.error(
                method,
                path,
                ErrorKind::Malformed,
                format!("{what} ({e}; {} bytes)", body.len()),
                Some("Nothing of this batch was written; run the sync again later, and report it to the source if it persists".into()),
            )
        })
    }

    fn error(&self, method: &Method, path: &str, kind: ErrorKind, detail: String, hint: Option<String>) -> SourceError {
        SourceError {
            instance: self.config.instance.clone(),
            system: self.config.system.to_string(),
            method: method.to_string(),
            endpoint: path.to_string(),
            kind,
            detail,
            hint,
        }
    }
}

enum Failure {
    Status { status: StatusCode, content_type: Option<String>, body: Bytes, retry_after: Option<Duration> },
    Timeout,
    Transport(String),
}

impl Failure {
    fn from_reqwest(e: reqwest::Error) -> Failure {
        if e.is_timeout() {
            Failure::Timeout
        } else {
            Failure::Transport(format!("cannot reach the source ({})", error_chain(&e)))
        }
    }
}

/// The error and its causes on one line; reqwest's URL is left out (it may hold a query).
fn error_chain(e: &reqwest::Error) -> String {
    let mut text = e.without_url_ref().to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

trait WithoutUrl {
    fn without_url_ref(&self) -> String;
}

impl WithoutUrl for reqwest::Error {
    fn without_url_ref(&self) -> String {
        let mut text = self.to_string();
        if let Some(url) = self.url() {
            text = text.replace(&format!(" for url ({url})"), "");
        }
        text
    }
}

fn is_html(content_type: Option<&str>, body: &[u8]) -> bool {
    if content_type.is_some_and(|c| c.starts_with("text/html")) {
        return true;
    }
    let start = body.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(body.len());
    let head = body[start..body.len().min(start + 14)].to_ascii_lowercase();
    head.starts_with(b"<!doctype html") || head.starts_with(b"<html")
}

/// The message of an HTML error page: Dnevnik's `<div class="error__description"><p>…`,
/// else the `<title>`.
fn html_message(body: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(body);
    let pick = |start_marker: &str, open: &str, close: &str| -> Option<String> {
        let at = text.find(start_marker)?;
        let rest = &text[at..];
        let open_at = rest.find(open)? + open.len();
        let end = rest[open_at..].find(close)?;
        Some(strip_tags(&rest[open_at..open_at + end]))
    };
    pick("error__description", "<p>", "</p>")
        .or_else(|| pick("<title", ">", "</title>"))
        .map(|s| s.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|s| !s.is_empty())
}

fn strip_tags(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut inside = false;
    for c in s.chars() {
        match c {
            '<' => inside = true,
            '>' => inside = false,
            c if !inside => out.push(c),
            _ => {}
        }
    }
    out
}

fn parse_retry_after(value: &str) -> Option<Duration> {
    let cap = Duration::from_secs(300);
    if let Ok(secs) = value.trim().parse::<u64>() {
        return Some(Duration::from_secs(secs).min(cap));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(SystemTime::now()).unwrap_or_default().min(cap))
}

/// Exponential backoff with full jitter: a random delay in [0, min(max, base·2^attempt)].
fn backoff(policy: &RetryPolicy, attempt: u32) -> Duration {
    let ceiling = policy.base_delay.saturating_mul(1u32 << attempt.min(16)).min(policy.max_delay);
    let unit = jitter_unit();
    // Never less than a tenth of the base delay, so a storm of retries still spreads out.
    ceiling.mul_f64(unit).max(policy.base_delay / 10)
}

/// A number in [0, 1) that differs between calls and processes (splitmix64 over the clock
/// and a counter); jitter needs no cryptographic randomness.
fn jitter_unit() -> f64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_nanos() as u64;
    let mut z = nanos ^ COUNTER.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_messages_are_found() {
        let page = r#"<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body><div class="error__description"><p>Сервис <b>временно</b> недоступен</p></div></body></html>"#;
        assert_eq!(html_message(page.as_bytes()).as_deref(), Some("Сервис временно недоступен"));
        assert_eq!(html_message(b"<html><title> Oops </title></html>").as_deref(), Some("Oops"));
        assert!(is_html(None, b"  <!DOCTYPE html>"));
        assert!(!is_html(Some("application/json"), b"{}"));
    }

    #[test]
    fn retry_after_is_read_in_both_forms_and_capped() {
        assert_eq!(parse_retry_after("3"), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after("100000"), Some(Duration::from_secs(300)));
        let later = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(20));
        let d = parse_retry_after(&later).unwrap();
        assert!(d <= Duration::from_secs(20) && d >= Duration::from_secs(18), "{d:?}");
    }

    #[test]
    fn backoff_grows_within_its_bounds() {
        let policy = RetryPolicy::default();
        for attempt in 1..20 {
            let d = backoff(&policy, attempt);
            assert!(d <= policy.max_delay);
            assert!(d >= policy.base_delay / 10);
        }
        let spread: std::collections::BTreeSet<u128> = (0..50).map(|_| backoff(&policy, 5).as_micros()).collect();
        assert!(spread.len() > 10, "jitter must vary the delays");
    }
}

/// The client against a real HTTP server on loopback (a few lines of HTTP/1.1 over tokio).
#[cfg(test)]
mod loopback_tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    struct NoAuth;
    #[async_trait]
    impl Authenticator for NoAuth {
        async fn authorize(&self, request: RequestBuilder) -> Result<RequestBuilder, String> {
            Ok(request)
        }
    }

    struct NoBodies;
    impl ErrorClassifier for NoBodies {
        fn classify(&self, _: StatusCode, _: &[u8]) -> Option<Classified> {
            None
        }
    }

    /// A source that answers its very first request with its request limit
    /// (`429`, `Retry-After: 1`) and every later one with `{}`; it reports each request's
    /// path and arrival time.
    async fn source_limiting_its_first_request() -> (Url, tokio::sync::mpsc::UnboundedReceiver<(String, Instant)>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url: Url = format!("http://{}/", listener.local_addr().unwrap()).parse().unwrap();
        let (seen, arrivals) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut first = true;
            loop {
                let Ok((mut socket, _)) = listener.accept().await else { return };
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let path = String::from_utf8_lossy(&head).split_whitespace().nth(1).unwrap_or_default().to_string();
                let _ = seen.send((path, Instant::now()));
                let answer: &[u8] = if std::mem::take(&mut first) {
                    b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 1\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"
                } else {
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"
                };
                let _ = socket.write_all(answer).await;
            }
        });
        (url, arrivals)
    }

    #[tokio::test]
    async fn a_request_limit_answer_holds_back_every_request_of_the_client() {
        let (url, mut arrivals) = source_limiting_its_first_request().await;
        let client = Arc::new(
            SourceClient::new(ClientConfig::new("t", "test", url), Arc::new(NoAuth), Arc::new(NoBodies)).unwrap(),
        );

        let refused = {
            let client = client.clone();
            tokio::spawn(async move { client.get_json::<serde_json::Value>("data", "first", &[]).await })
        };
        let (path, limited_at) = arrivals.recv().await.unwrap();
        assert_eq!(path, "/first");
        // Wait until the client has read the refusal (it counts it), then ask for another
        // endpoint: it must wait out the source's Retry-After too, not go at once.
        while client.stats().rate_limited.load(Ordering::Relaxed) == 0 {
            tokio::task::yield_now().await;
        }
        let other = client.get_json::<serde_json::Value>("data", "second", &[]).await;
        assert!(other.is_ok(), "{other:?}");
        let mut later = Vec::new();
        while let Ok(arrival) = arrivals.try_recv() {
            later.push(arrival);
        }
        let second = later.iter().find(|(p, _)| p == "/second").expect("the second request reached the source");
        let waited = second.1 - limited_at;
        assert!(waited >= Duration::from_millis(950), "the second request went {waited:?} after the refusal");
        assert!(refused.await.unwrap().is_ok(), "the refused request succeeds on its retry");
    }
}
