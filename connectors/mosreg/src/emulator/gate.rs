//! What stands in front of every API answer: the JWT (in any of its transports) and its
//! life, the profile, the per-token request limit and the injected failures; and the
//! `Date` header on every answer.

use std::io;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::header::{AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, COOKIE, DATE};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::NaiveTime;
use futures::StreamExt as _;
use serde::{Deserialize, Serialize};

use super::{EmulatorState, ErrorShape, TokenCheck, Viewer};

/// The platform's session-ended message (SOURCES.md, «Моя школа»: «Expiry»), written here
/// from the evidence, not taken from the connector.
pub(crate) const SESSION_ENDED: &str = "Предыдущая сессия работы в ЭЖД завершена. Войдите в ЭЖД заново";

pub(crate) const JSON: &str = "application/json; charset=utf-8";

/// How the next API answers are broken (`/__emulator/fail?mode=…`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FailureMode {
    /// HTTP 200 JSON whose body is the real answer cut in the middle plus garbage.
    Malformed,
    /// HTTP 502 `text/html`: the front proxy's error page.
    Html502,
    /// HTTP 200 whose `Content-Length` promises the whole answer; half of it comes, then
    /// the connection is aborted.
    Truncated,
    /// HTTP 401 with the session-ended body (an expired token), whatever token was sent.
    Unauthorized,
}

impl FailureMode {
    pub fn parse(s: &str) -> Option<Option<FailureMode>> {
        Some(Some(match s {
            "malformed" => FailureMode::Malformed,
            "html502" => FailureMode::Html502,
            "truncated" => FailureMode::Truncated,
            "unauthorized" | "expired" => FailureMode::Unauthorized,
            "off" => return Some(None),
            _ => return None,
        }))
    }
}

#[derive(Debug, Default)]
pub(crate) struct FailState {
    pub mode: Option<FailureMode>,
    /// API answers still to break; `None` = until `mode=off`
    pub remaining: Option<u64>,
}

impl FailState {
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

/// A JSON error answer in the configured shape.
pub(crate) fn error(shape: ErrorShape, status: StatusCode, kind: &str, message: &str) -> Response {
    let body = match shape {
        ErrorShape::TypeDescription => serde_json::json!({ "type": kind, "description": message, "details": null }),
        ErrorShape::CodeMessage => serde_json::json!({ "code": status.as_u16(), "message": message }),
    };
    (status, [(CONTENT_TYPE, JSON)], body.to_string()).into_response()
}

/// The session-ended answer (401).
pub(crate) fn session_ended(shape: ErrorShape) -> Response {
    error(shape, StatusCode::UNAUTHORIZED, "authorization", SESSION_ENDED)
}

pub(crate) fn json_ok(value: &serde_json::Value) -> Response {
    ([(CONTENT_TYPE, JSON)], serde_json::to_vec(value).expect("JSON serializes")).into_response()
}

fn same_secret(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn cookie(req: &Request, name: &str) -> Option<String> {
    req.headers().get_all(COOKIE).iter().find_map(|v| {
        let text = v.to_str().ok()?;
        text.split(';').find_map(|pair| {
            let (k, v) = pair.trim().split_once('=')?;
            (k.trim() == name && !v.trim().is_empty()).then(|| v.trim().to_string())
        })
    })
}

fn header(req: &Request, name: &str) -> Option<String> {
    let v = req.headers().get(name)?;
    let t = String::from_utf8_lossy(v.as_bytes()).trim().to_owned();
    (!t.is_empty()).then_some(t)
}

/// The JWT a request presents: `Authorization: Bearer`, `Auth-Token`, cookie `aupd_token`
/// or `aupdtoken` — any one alone is enough.
pub(crate) fn token(req: &Request) -> Option<String> {
    header(req, AUTHORIZATION.as_str())
        .and_then(|v| {
            let (scheme, rest) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim().to_string()).filter(|t| !t.is_empty())
        })
        .or_else(|| header(req, "auth-token"))
        .or_else(|| cookie(req, "aupd_token"))
        .or_else(|| cookie(req, "aupdtoken"))
}

/// The profile a request names (`Profile-Id`, any casing; headers are case-insensitive).
pub(crate) fn profile(req: &Request) -> Option<String> {
    header(req, "profile-id").filter(|p| p != "null")
}

/// Which known token a presented one is (compared in constant time).
pub(crate) fn check_token(st: &EmulatorState, presented: &str) -> TokenCheck {
    let inner = &st.inner;
    let known = {
        let book = inner.tokens.lock().unwrap_or_else(|e| e.into_inner());
        book.tokens.keys().find(|t| same_secret(t.as_bytes(), presented.as_bytes())).cloned()
    };
    match known {
        Some(t) => inner.use_token(&t),
        None => TokenCheck::Unknown,
    }
}

/// Credentials, profile, request limit and injected failures, in that order.
pub(crate) async fn api_gate(State(st): State<EmulatorState>, mut req: Request, next: Next) -> Response {
    let inner = &st.inner;
    let shape = inner.error_shape;
    inner.requests.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let Some(token) = token(&req) else { return session_ended(shape) };
    let account = match check_token(&st, &token) {
        TokenCheck::Valid(account) => account,
        TokenCheck::Expired | TokenCheck::Unknown => return session_ended(shape),
    };
    let viewer = inner.viewer(account);
    // Public clients send no `Profile-Id` on events, class members and academic years, and
    // the parent's profile id where they send one: a missing one is fine; one the token
    // has no such profile for is refused (assumption: status and text).
    if let Some(p) = profile(&req) {
        let known = match &viewer {
            Viewer::Staff => {
                inner.world.read(|w| (0..w.schools.len()).any(|i| super::profile_id(i).to_string() == p))
                    || p == (super::profile_id(0) - 50).to_string()
            }
            Viewer::Family { account, .. } => account.profile_id().to_string() == p,
        };
        if !known {
            return error(shape, StatusCode::BAD_REQUEST, "profile", "Профиль не найден или не выбран (Profile-Id)");
        }
    }
    req.extensions_mut().insert(viewer);
    if let Some(limiter) = st.limiter() {
        if limiter.check_key(&token).is_err() {
            inner.limited.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            return error(shape, StatusCode::TOO_MANY_REQUESTS, "requestLimit", "Превышен лимит запросов");
        }
    }
    let Some(mode) = st.take_failure() else {
        return next.run(req).await;
    };
    inner.failed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    match mode {
        FailureMode::Unauthorized => session_ended(shape),
        FailureMode::Html502 => html_502(),
        FailureMode::Malformed => {
            let body = full_body(next.run(req).await).await;
            let mut broken = body[..body.len() / 2].to_vec();
            broken.extend_from_slice(b"\xef\xbf\xbd<<garbage after a cut>>");
            (StatusCode::OK, [(CONTENT_TYPE, JSON)], broken).into_response()
        }
        FailureMode::Truncated => truncated(full_body(next.run(req).await).await),
    }
}

async fn full_body(resp: Response) -> Bytes {
    axum::body::to_bytes(resp.into_body(), usize::MAX).await.unwrap_or_default()
}

fn truncated(body: Bytes) -> Response {
    let full = body.len();
    let part = body.slice(..full / 2);
    let stream = futures::stream::iter([Ok::<Bytes, io::Error>(part)]).chain(futures::stream::once(async {
        tokio::time::sleep(Duration::from_millis(20)).await;
        Err(io::Error::new(io::ErrorKind::ConnectionAborted, "emulated truncated answer"))
    }));
    let mut resp = Response::new(Body::from_stream(stream));
    resp.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(JSON));
    resp.headers_mut().insert(CONTENT_LENGTH, HeaderValue::from(full));
    resp
}

fn html_502() -> Response {
    const PAGE: &str = "<!DOCTYPE html>\n<html lang=\"ru\">\n<head><meta charset=\"utf-8\">\
<title>502 Bad Gateway</title></head>\n<body>\n<center><h1>502 Bad Gateway</h1></center>\n\
<hr><center>nginx</center>\n</body>\n</html>\n";
    (StatusCode::BAD_GATEWAY, [(CONTENT_TYPE, "text/html; charset=utf-8")], PAGE).into_response()
}

/// Every answer carries the emulator's clock: the world's today at 12:00 UTC.
pub(crate) async fn stamp_date(State(st): State<EmulatorState>, req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    let now = st.inner.world.read(|w| w.today).and_time(NaiveTime::from_hms_opt(12, 0, 0).expect("noon"));
    let text = now.format("%a, %d %b %Y %H:%M:%S GMT").to_string();
    if let Ok(v) = HeaderValue::from_str(&text) {
        resp.headers_mut().insert(DATE, v);
    }
    resp
}

pub(crate) async fn not_found(State(st): State<EmulatorState>) -> Response {
    error(st.inner.error_shape, StatusCode::NOT_FOUND, "notFound", "Not Found")
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
        let mut f = FailState { mode: Some(FailureMode::Unauthorized), remaining: None };
        for _ in 0..3 {
            assert_eq!(f.take(), Some(FailureMode::Unauthorized));
        }
    }

    #[test]
    fn any_one_transport_carries_the_token() {
        let with = |name: &str, value: &str| {
            Request::builder().uri("/core/api/profiles?pid=null").header(name, value).body(Body::empty()).unwrap()
        };
        assert_eq!(token(&with("authorization", "Bearer abc")).as_deref(), Some("abc"));
        assert_eq!(token(&with("Auth-Token", "abc")).as_deref(), Some("abc"));
        assert_eq!(token(&with("cookie", "x=1; aupd_token=abc")).as_deref(), Some("abc"));
        assert_eq!(token(&with("cookie", "aupdtoken=abc")).as_deref(), Some("abc"));
        assert_eq!(token(&with("authorization", "Basic abc")), None);
        assert_eq!(profile(&with("Profile-Id", "7")).as_deref(), Some("7"));
        assert_eq!(profile(&with("profile-id", "null")), None);
    }
}
