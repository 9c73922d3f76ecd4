//! Reading the credentials a request presents, wherever a system's clients put them.

use axum::extract::Request;
use axum::http::header::{AUTHORIZATION, COOKIE};

/// Equality that takes the same time wherever the first difference is (tokens are compared
/// with it, never logged).
pub fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A header's value, trimmed; `None` when missing or blank.
pub fn header(req: &Request, name: &str) -> Option<String> {
    let v = req.headers().get(name)?;
    let t = String::from_utf8_lossy(v.as_bytes()).trim().to_owned();
    (!t.is_empty()).then_some(t)
}

/// A cookie's value (from any `Cookie` header), trimmed; `None` when missing or blank.
pub fn cookie(req: &Request, name: &str) -> Option<String> {
    req.headers().get_all(COOKIE).iter().find_map(|v| {
        let text = v.to_str().ok()?;
        text.split(';').find_map(|pair| {
            let (k, v) = pair.trim().split_once('=')?;
            (k.trim() == name && !v.trim().is_empty()).then(|| v.trim().to_string())
        })
    })
}

/// The first non-empty value of query parameter `name`.
pub fn query_value(req: &Request, name: &str) -> Option<String> {
    let q = req.uri().query()?;
    url::form_urlencoded::parse(q.as_bytes()).find(|(k, v)| k == name && !v.is_empty()).map(|(_, v)| v.into_owned())
}

/// The token of `Authorization: Bearer <token>` (the scheme in any casing).
pub fn bearer(req: &Request) -> Option<String> {
    let v = header(req, AUTHORIZATION.as_str())?;
    let (scheme, rest) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim().to_string()).filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;

    fn with(name: &str, value: &str) -> Request {
        Request::builder().uri("/x?pid=7&empty=").header(name, value).body(Body::empty()).unwrap()
    }

    #[test]
    fn credentials_are_read_from_each_place() {
        assert_eq!(bearer(&with("authorization", "Bearer abc")).as_deref(), Some("abc"));
        assert_eq!(bearer(&with("authorization", "bearer  abc ")).as_deref(), Some("abc"));
        assert_eq!(bearer(&with("authorization", "Basic abc")), None);
        assert_eq!(cookie(&with("cookie", "a=1; auth_token=abc ; b="), "auth_token").as_deref(), Some("abc"));
        assert_eq!(cookie(&with("cookie", "b="), "b"), None);
        assert_eq!(header(&with("Auth-Token", " t "), "auth-token").as_deref(), Some("t"));
        assert_eq!(header(&with("Auth-Token", "  "), "auth-token"), None);
        assert_eq!(query_value(&with("x", "y"), "pid").as_deref(), Some("7"));
        assert_eq!(query_value(&with("x", "y"), "empty"), None);
    }

    #[test]
    fn secrets_compare() {
        assert!(same_secret(b"abc", b"abc"));
        assert!(!same_secret(b"abc", b"abd"));
        assert!(!same_secret(b"abc", b"abcd"));
    }
}
