//! What stands in front of every API answer: the session credentials (headers or cookies),
//! the token's life, the per-token request limit and the injected failures; and the `Date`
//! header on every answer.

use std::io;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE, COOKIE, DATE};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::NaiveTime;
use futures::StreamExt as _;
use serde::{Deserialize, Serialize};

use super::{EmulatorState, Viewer};

/// The platform's lost-session message (SOURCES.md, ЭПОС.Школа: «Refused token»), written
/// here from the evidence, not taken from the connector.
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
    /// HTTP 401 with the lost-session body.
    Unauthorized,
    /// HTTP 400 with the lost-session body (how the platform answers an expired token).
    Expired,
}

impl FailureMode {
    pub fn parse(s: &str) -> Option<Option<FailureMode>> {
        Some(Some(match s {
            "malformed" => FailureMode::Malformed,
            "html502" => FailureMode::Html502,
            "truncated" => FailureMode::Truncated,
            "unauthorized" => FailureMode::Unauthorized,
            "expired" => FailureMode::Expired,
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

/// A `{code, message}` error answer.
pub(crate) fn error(status: StatusCode, message: &str) -> Response {
    let body = serde_json::json!({ "code": status.as_u16(), "message": message });
    (status, [(CONTENT_TYPE, JSON)], body.to_string()).into_response()
}

/// The lost-session answer: 401 for a token the server does not know, 400 for an expired one.
pub(crate) fn session_ended(status: StatusCode) -> Response {
    error(status, SESSION_ENDED)
}

pub(crate) fn json_ok(value: &serde_json::Value) -> Response {
    ([(CONTENT_TYPE, JSON)], serde_json::to_vec(value).expect("JSON serializes")).into_response()
}

pub(crate) fn same_secret(a: &[u8], b: &[u8]) -> bool {
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

fn query(req: &Request, name: &str) -> Option<String> {
    let q = req.uri().query()?;
    url::form_urlencoded::parse(q.as_bytes()).find(|(k, v)| k == name && !v.is_empty()).map(|(_, v)| v.into_owned())
}

/// The token (header `auth-token`, else cookie `auth_token`) and the profile (header
/// `profile-id`, cookie `profile_id`, or query `pid`) a request presents.
pub(crate) fn credentials(req: &Request) -> (Option<String>, Option<String>) {
    let token = header(req, "auth-token").or_else(|| cookie(req, "auth_token"));
    let profile = header(req, "profile-id").or_else(|| cookie(req, "profile_id")).or_else(|| query(req, "pid"));
    (token, profile)
}

/// Credentials, token life, request limit and injected failures, in that order.
pub(crate) async fn api_gate(State(st): State<EmulatorState>, mut req: Request, next: Next) -> Response {
    let inner = &st.inner;
    inner.requests.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    // The session POST carries its token in the body; its handler checks it.
    if !req.uri().path().ends_with("/lms/api/sessions") {
        let (token, profile) = credentials(&req);
        let Some(token) = token else { return session_ended(StatusCode::UNAUTHORIZED) };
        let Some(viewer) = inner.viewer(&token) else { return session_ended(StatusCode::UNAUTHORIZED) };
        if inner.token_expired() {
            return session_ended(StatusCode::BAD_REQUEST);
        }
        let known = profile.as_deref().is_some_and(|p| match &viewer {
            Viewer::Staff => inner.world.read(|w| (0..w.schools.len()).any(|i| super::profile_id(i).to_string() == p)),
            Viewer::Family { account, .. } => account.profile_id().to_string() == p,
        });
        if !known {
            return error(StatusCode::FORBIDDEN, "Профиль не найден или не выбран (profile-id)");
        }
        req.extensions_mut().insert(viewer);
    }
    if let Some(limiter) = st.limiter() {
        if limiter.check_key(&inner.token).is_err() {
            inner.limited.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            return error(StatusCode::TOO_MANY_REQUESTS, "Превышено допустимое количество запросов");
        }
    }
    let Some(mode) = st.take_failure() else {
        return next.run(req).await;
    };
    inner.failed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    match mode {
        FailureMode::Unauthorized => session_ended(StatusCode::UNAUTHORIZED),
        FailureMode::Expired => session_ended(StatusCode::BAD_REQUEST),
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

pub(crate) async fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "Not Found")
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
        let mut f = FailState { mode: Some(FailureMode::Expired), remaining: None };
        for _ in 0..3 {
            assert_eq!(f.take(), Some(FailureMode::Expired));
        }
    }

    #[test]
    fn cookies_and_headers_both_carry_credentials() {
        let req = Request::builder()
            .uri("/core/api/marks?pid=7")
            .header(COOKIE, "aid=3; auth_token=abc; other=x")
            .body(Body::empty())
            .unwrap();
        assert_eq!(credentials(&req), (Some("abc".into()), Some("7".into())));
        let req = Request::builder()
            .uri("/core/api/marks")
            .header("auth-token", "t")
            .header("profile-id", "9")
            .body(Body::empty())
            .unwrap();
        assert_eq!(credentials(&req), (Some("t".into()), Some("9".into())));
    }
}
