//! What stands in front of every API answer: the token, the per-token request limit and the
//! injected failures; and the `Date` header on every answer.

use std::io;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE, DATE};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures::StreamExt as _;
use serde::{Deserialize, Serialize};

use super::wire::ApiError;
use super::{Account, EmulatorState};

pub(crate) const JSON: &str = "application/json; charset=utf-8";

/// How the next API answers are broken (`/__emulator/fail?mode=…`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FailureMode {
    /// HTTP 200 `application/json` whose body is the real answer cut in the middle plus
    /// garbage: never valid JSON.
    Malformed,
    /// HTTP 502 `text/html`: the front proxy's error page.
    Html502,
    /// HTTP 200 whose `Content-Length` promises the whole answer; the connection delivers
    /// half of it and is then aborted.
    Truncated,
    /// HTTP 401 `invalidToken`, as if the token had been revoked.
    Unauthorized,
}

impl FailureMode {
    pub fn parse(s: &str) -> Option<Option<FailureMode>> {
        Some(Some(match s {
            "malformed" => FailureMode::Malformed,
            "html502" => FailureMode::Html502,
            "truncated" => FailureMode::Truncated,
            "unauthorized" => FailureMode::Unauthorized,
            "off" => return Some(None),
            _ => return None,
        }))
    }
}

/// The failure injection in force.
#[derive(Debug, Default)]
pub(crate) struct FailState {
    pub mode: Option<FailureMode>,
    /// API answers still to break; `None` = until `mode=off`
    pub remaining: Option<u64>,
}

impl FailState {
    /// The failure for the next API answer, counting it down.
    pub fn take(&mut self) -> Option<FailureMode> {
        let mode = self.mode?;
        match self.remaining.as_mut() {
            None => Some(mode),
            Some(0) => {
                self.mode = None;
                None
            }
            Some(n) => {
                *n -= 1;
                if *n == 0 {
                    self.mode = None;
                    self.remaining = None;
                }
                Some(mode)
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, [(CONTENT_TYPE, JSON)], self.body()).into_response()
    }
}

/// A JSON answer from ready bytes.
pub(crate) fn json_ok(body: Vec<u8>) -> Response {
    ([(CONTENT_TYPE, JSON)], body).into_response()
}

/// Equality that takes the same time wherever the first difference is.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The token a request presents: header `Access-Token`, else query `access_token`.
fn presented_token(req: &Request) -> Option<String> {
    if let Some(v) = req.headers().get("access-token") {
        let t = String::from_utf8_lossy(v.as_bytes()).trim().to_owned();
        if !t.is_empty() {
            return Some(t);
        }
    }
    let query = req.uri().query()?;
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, v)| k == "access_token" && !v.is_empty())
        .map(|(_, v)| v.into_owned())
}

/// The account behind the request's token (a request extension set by [`api_gate`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Caller(pub Account);

/// Token, request limit and injected failures, in that order, for every API route.
/// (Tokens are compared, never logged.)
pub(crate) async fn api_gate(State(st): State<EmulatorState>, mut req: Request, next: Next) -> Response {
    let inner = &st.inner;
    inner.count_request();
    let Some(token) = presented_token(&req) else {
        return ApiError::token_required().into_response();
    };
    // Every token is compared, so the time taken does not tell which one matched.
    let mut account = None;
    for (known, a) in &inner.accounts {
        if same_secret(token.as_bytes(), known.as_bytes()) && account.is_none() {
            account = Some(*a);
        }
    }
    let Some(account) = account else {
        return ApiError::invalid_token().into_response();
    };
    if let Some(limiter) = inner.limiter() {
        if limiter.check_key(&token).is_err() {
            inner.count_limited();
            return ApiError::request_limit(inner.limit_status).into_response();
        }
    }
    hold_if_asked(inner).await;
    req.extensions_mut().insert(Caller(account));
    let Some(mode) = inner.take_failure() else {
        let resp = next.run(req).await;
        if inner.forms.numbers_as_strings && resp.status().is_success() {
            return strings_for_numbers(resp).await;
        }
        return resp;
    };
    inner.count_failed();
    match mode {
        FailureMode::Unauthorized => ApiError::invalid_token().into_response(),
        FailureMode::Html502 => html_502(),
        FailureMode::Malformed => {
            let (_, body) = full_answer(next.run(req).await).await;
            let cut = body.len() / 2;
            let mut broken = body[..cut].to_vec();
            // No bracket or quote: the document can never be closed by the garbage.
            broken.extend_from_slice(b"\xef\xbf\xbd<<garbage after a cut>>");
            (StatusCode::OK, [(CONTENT_TYPE, JSON)], broken).into_response()
        }
        FailureMode::Truncated => {
            let (_, body) = full_answer(next.run(req).await).await;
            truncated(body)
        }
    }
}

/// The answer with every number written as a string and the `_str` twins left out
/// ([`super::Forms::numbers_as_strings`]).
async fn strings_for_numbers(resp: Response) -> Response {
    fn rewrite(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Number(n) => *v = serde_json::Value::String(n.to_string()),
            serde_json::Value::Array(items) => items.iter_mut().for_each(rewrite),
            serde_json::Value::Object(map) => {
                map.retain(|k, _| !(k.ends_with("_str") || k.ends_with("Str")));
                map.values_mut().for_each(rewrite);
            }
            _ => {}
        }
    }
    let (status, body) = full_answer(resp).await;
    let Ok(mut value) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return (status, [(CONTENT_TYPE, JSON)], body).into_response();
    };
    rewrite(&mut value);
    let bytes = serde_json::to_vec(&value).expect("serializing into memory cannot fail");
    (status, [(CONTENT_TYPE, JSON)], bytes).into_response()
}

/// Keeps an admitted request open while `hold?after=N` says so (it is past the N-th).
async fn hold_if_asked(inner: &super::Inner) {
    let mut hold = inner.hold_after.subscribe();
    let Some(after) = *hold.borrow_and_update() else {
        return;
    };
    if inner.admitted.fetch_add(1, Ordering::SeqCst) < after {
        return;
    }
    inner.held.fetch_add(1, Ordering::SeqCst);
    // The sender lives in `inner`, which outlives the request: this ends with the hold off.
    let _ = hold.wait_for(Option::is_none).await;
}

/// The status and the whole body of an answer.
async fn full_answer(resp: Response) -> (StatusCode, Bytes) {
    let status = resp.status();
    let body = axum::body::to_bytes(resp.into_body(), usize::MAX).await.unwrap_or_default();
    (status, body)
}

/// A 200 that promises `body.len()` bytes, sends half, then aborts the connection: the body
/// stream yields an error, on which hyper drops the connection without completing the message.
fn truncated(body: Bytes) -> Response {
    let full = body.len();
    let part = body.slice(..full / 2);
    let stream = futures::stream::iter([Ok::<Bytes, io::Error>(part)]).chain(futures::stream::once(async {
        // Let the first half reach the socket before the abort.
        tokio::time::sleep(Duration::from_millis(20)).await;
        Err(io::Error::new(io::ErrorKind::ConnectionAborted, "emulated truncated answer"))
    }));
    let mut resp = Response::new(Body::from_stream(stream));
    let headers = resp.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(JSON));
    headers.insert(CONTENT_LENGTH, HeaderValue::from(full));
    resp
}

fn html_502() -> Response {
    const PAGE: &str = "<!DOCTYPE html>\n<html lang=\"ru\">\n<head><meta charset=\"utf-8\">\
<title>502 Bad Gateway — Дневник.ру</title></head>\n<body>\n<div class=\"error\">\
<h1 class=\"error__title\">502</h1>\n<div class=\"error__description\"><p>Сервис временно \
недоступен</p></div>\n</div>\n</body>\n</html>\n";
    (StatusCode::BAD_GATEWAY, [(CONTENT_TYPE, "text/html; charset=utf-8")], PAGE).into_response()
}

/// Every answer (API, control surface, 404s) carries the emulator's clock.
pub(crate) async fn stamp_date(State(st): State<EmulatorState>, req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    resp.headers_mut().insert(DATE, st.inner.world.date_header());
    resp
}

/// Unknown paths, and known paths with another method.
pub(crate) async fn not_supported() -> Response {
    ApiError::method_not_supported().into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_count_runs_down() {
        let mut f = FailState { mode: Some(FailureMode::Html502), remaining: Some(2) };
        assert_eq!(f.take(), Some(FailureMode::Html502));
        assert_eq!(f.take(), Some(FailureMode::Html502));
        assert_eq!(f.take(), None);
        let mut f = FailState { mode: Some(FailureMode::Malformed), remaining: None };
        for _ in 0..5 {
            assert_eq!(f.take(), Some(FailureMode::Malformed));
        }
        let mut f = FailState { mode: Some(FailureMode::Malformed), remaining: Some(0) };
        assert_eq!(f.take(), None);
    }

    #[test]
    fn secrets_compare() {
        assert!(same_secret(b"abc", b"abc"));
        assert!(!same_secret(b"abc", b"abd"));
        assert!(!same_secret(b"abc", b"abcd"));
    }
}
