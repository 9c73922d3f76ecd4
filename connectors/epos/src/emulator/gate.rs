//! What stands in front of every API answer: the session credentials (headers or cookies),
//! the token's life, the per-token request limit and the injected failures (the shared
//! [`Gate`](ejgate_sdk::emulator::Gate)), in ЭПОС.Школа's words.

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;
use ejgate_sdk::emulator::mesh::{self, is_staff_profile};
use ejgate_sdk::emulator::{broken_answer, cookie, header, query_value, FailureMode};

use super::{EmulatorState, Viewer, SHAPE};

pub(crate) use ejgate_sdk::emulator::json_ok;

/// A `{code, message}` error answer.
pub(crate) fn error(status: StatusCode, message: &str) -> Response {
    mesh::error(SHAPE, status, "", message)
}

/// The lost-session answer: 401 for a token the server does not know, 400 for an expired one.
pub(crate) fn session_ended(status: StatusCode) -> Response {
    mesh::session_ended(SHAPE, status)
}

/// The token (header `auth-token`, else cookie `auth_token`) and the profile (header
/// `profile-id`, cookie `profile_id`, or query `pid`) a request presents.
pub(crate) fn credentials(req: &Request) -> (Option<String>, Option<String>) {
    let token = header(req, "auth-token").or_else(|| cookie(req, "auth_token"));
    let profile = header(req, "profile-id").or_else(|| cookie(req, "profile_id")).or_else(|| query_value(req, "pid"));
    (token, profile)
}

/// Credentials, token life, request limit and injected failures, in that order.
pub(crate) async fn api_gate(State(st): State<EmulatorState>, mut req: Request, next: Next) -> Response {
    let inner = &st.inner;
    inner.gate.count_request();
    // The session POST carries its token in the body; its handler checks it.
    if !req.uri().path().ends_with("/lms/api/sessions") {
        let (token, profile) = credentials(&req);
        let Some(token) = token else { return session_ended(StatusCode::UNAUTHORIZED) };
        let Some(viewer) = inner.viewer(&token) else { return session_ended(StatusCode::UNAUTHORIZED) };
        if inner.token_expired() {
            return session_ended(StatusCode::BAD_REQUEST);
        }
        let known = profile.as_deref().is_some_and(|p| match &viewer {
            Viewer::Staff => inner.world.read(|w| is_staff_profile(w, p)),
            Viewer::Family { account, .. } => account.profile_id().to_string() == p,
        });
        if !known {
            return error(StatusCode::FORBIDDEN, "Профиль не найден или не выбран (profile-id)");
        }
        req.extensions_mut().insert(viewer);
    }
    if inner.gate.over_limit(&inner.token) {
        return error(StatusCode::TOO_MANY_REQUESTS, "Превышено допустимое количество запросов");
    }
    let Some(mode) = inner.gate.take_failure() else {
        return next.run(req).await;
    };
    broken_answer(mode, req, next, |mode| match mode {
        FailureMode::Expired => session_ended(StatusCode::BAD_REQUEST),
        FailureMode::Html502 => mesh::html_502(),
        _ => session_ended(StatusCode::UNAUTHORIZED),
    })
    .await
}

pub(crate) async fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "Not Found")
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::header::COOKIE;

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
