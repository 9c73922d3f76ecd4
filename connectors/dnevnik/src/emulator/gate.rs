//! What stands in front of every API answer: the token, the per-token request limit and the
//! injected failures (the shared [`Gate`](ejgate_sdk::emulator::Gate)), in Dnevnik's words.

use std::sync::atomic::Ordering;

use axum::extract::{Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use ejgate_sdk::emulator::{broken_answer, full_body, header, query_value, same_secret, FailureMode};

use super::wire::ApiError;
use super::{Account, EmulatorState};

pub(crate) use ejgate_sdk::emulator::{json_bytes as json_ok, JSON};

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, [(CONTENT_TYPE, JSON)], self.body()).into_response()
    }
}

/// The token a request presents: header `Access-Token`, else query `access_token`.
fn presented_token(req: &Request) -> Option<String> {
    header(req, "access-token").or_else(|| query_value(req, "access_token"))
}

/// The account behind the request's token (a request extension set by [`api_gate`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Caller(pub Account);

/// Token, request limit and injected failures, in that order, for every API route.
/// (Tokens are compared, never logged.)
pub(crate) async fn api_gate(State(st): State<EmulatorState>, mut req: Request, next: Next) -> Response {
    let inner = &st.inner;
    inner.gate.count_request();
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
    if inner.gate.over_limit(&token) {
        return ApiError::request_limit(inner.limit_status).into_response();
    }
    hold_if_asked(inner).await;
    req.extensions_mut().insert(Caller(account));
    let Some(mode) = inner.gate.take_failure() else {
        let resp = next.run(req).await;
        if inner.forms.numbers_as_strings && resp.status().is_success() {
            return strings_for_numbers(resp).await;
        }
        return resp;
    };
    broken_answer(mode, req, next, |mode| match mode {
        FailureMode::Html502 => html_502(),
        _ => ApiError::invalid_token().into_response(),
    })
    .await
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
    let status = resp.status();
    let body = full_body(resp).await;
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

fn html_502() -> Response {
    const PAGE: &str = "<!DOCTYPE html>\n<html lang=\"ru\">\n<head><meta charset=\"utf-8\">\
<title>502 Bad Gateway — Дневник.ру</title></head>\n<body>\n<div class=\"error\">\
<h1 class=\"error__title\">502</h1>\n<div class=\"error__description\"><p>Сервис временно \
недоступен</p></div>\n</div>\n</body>\n</html>\n";
    (StatusCode::BAD_GATEWAY, [(CONTENT_TYPE, "text/html; charset=utf-8")], PAGE).into_response()
}

/// Unknown paths, and known paths with another method.
pub(crate) async fn not_supported() -> Response {
    ApiError::method_not_supported().into_response()
}
