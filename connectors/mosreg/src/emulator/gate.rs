//! What stands in front of every API answer: the JWT (in any of its transports) and its
//! life, the profile, the per-token request limit and the injected failures (the shared
//! [`Gate`](ejgate_sdk::emulator::Gate)), in «Моя школа»'s words.

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;
use ejgate_sdk::emulator::mesh::{self, is_staff_profile, profile_id};
use ejgate_sdk::emulator::{bearer, broken_answer, cookie, header, same_secret, FailureMode};

use super::{EmulatorState, ErrorShape, TokenCheck, Viewer};

pub(crate) use ejgate_sdk::emulator::{json_ok, JSON};

/// A JSON error answer in the configured shape.
pub(crate) fn error(shape: ErrorShape, status: StatusCode, kind: &str, message: &str) -> Response {
    mesh::error(shape, status, kind, message)
}

/// The session-ended answer (401).
pub(crate) fn session_ended(shape: ErrorShape) -> Response {
    mesh::session_ended(shape, StatusCode::UNAUTHORIZED)
}

/// The JWT a request presents: `Authorization: Bearer`, `Auth-Token`, cookie `aupd_token`
/// or `aupdtoken` — any one alone is enough.
pub(crate) fn token(req: &Request) -> Option<String> {
    bearer(req)
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
    inner.gate.count_request();
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
            Viewer::Staff => inner.world.read(|w| is_staff_profile(w, &p)) || p == (profile_id(0) - 50).to_string(),
            Viewer::Family { account, .. } => account.profile_id().to_string() == p,
        };
        if !known {
            return error(shape, StatusCode::BAD_REQUEST, "profile", "Профиль не найден или не выбран (Profile-Id)");
        }
    }
    req.extensions_mut().insert(viewer);
    if inner.gate.over_limit(&token) {
        return error(shape, StatusCode::TOO_MANY_REQUESTS, "requestLimit", "Превышен лимит запросов");
    }
    let Some(mode) = inner.gate.take_failure() else {
        return next.run(req).await;
    };
    broken_answer(mode, req, next, |mode| match mode {
        FailureMode::Html502 => mesh::html_502(),
        _ => session_ended(shape),
    })
    .await
}

pub(crate) async fn not_found(State(st): State<EmulatorState>) -> Response {
    error(st.inner.error_shape, StatusCode::NOT_FOUND, "notFound", "Not Found")
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;

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
