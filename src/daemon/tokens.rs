//! Bearer tokens of the JSON API (ключи доступа к API): `ejgate token create|revoke|list`.
//!
//! A token is 32 random bytes from the operating system's generator (through `rand`'s
//! thread generator, a CSPRNG seeded by the OS), written as `ejgate_` and 64 hex digits; the
//! prefix lets secret scanners and people recognise one. It is shown once, when it is made,
//! and the store keeps only its BLAKE3 hash: a random 256-bit token needs no slow password
//! hash, since nobody can guess it from the hash. A presented token is hashed and looked up
//! by its hash, so no comparison of secrets runs in variable time. Tokens stay inside
//! [`SecretString`]s and are never logged.

use secrecy::{ExposeSecret, SecretString};

use crate::store::{ApiToken, Store, StoreError, StoreResult};

/// What every token starts with.
pub const PREFIX: &str = "ejgate_";

/// A new random token.
pub fn generate() -> SecretString {
    let mut bytes = [0u8; 32];
    rand::fill(&mut bytes[..]);
    let mut token = String::with_capacity(PREFIX.len() + 64);
    token.push_str(PREFIX);
    for b in bytes {
        token.push_str(&format!("{b:02x}"));
    }
    SecretString::from(token)
}

/// The hash the store keeps of a token.
pub fn hash(token: &SecretString) -> [u8; 32] {
    *blake3::hash(token.expose_secret().as_bytes()).as_bytes()
}

/// Whether `name` can name a token: 1 to 64 letters, digits, `-`, `_`, `.`.
fn check_name(name: &str) -> StoreResult<()> {
    if name.is_empty()
        || name.chars().count() > 64
        || !name.chars().all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(StoreError::Invalid(format!(
            "«{name}» cannot name an API token: use 1 to 64 letters, digits, '-', '_' and '.' (for example \
             the monitoring system or the person it is for: grafana, ivanova)"
        )));
    }
    Ok(())
}

/// Makes a token named `name` and keeps its hash; the token is returned once, to be shown.
pub async fn create(store: &dyn Store, name: &str) -> StoreResult<SecretString> {
    check_name(name)?;
    let token = generate();
    store.create_api_token(name, &hash(&token)).await?;
    Ok(token)
}

/// Revokes the token `name`; `false` when there is none in force by that name.
pub async fn revoke(store: &dyn Store, name: &str) -> StoreResult<bool> {
    store.revoke_api_token(name).await
}

/// The token in force a request presents, if it is one.
pub async fn check(store: &dyn Store, presented: &SecretString) -> StoreResult<Option<ApiToken>> {
    // Anything else cannot be a token: no lookup for it.
    let text = presented.expose_secret();
    if !text.starts_with(PREFIX) || text.len() != PREFIX.len() + 64 {
        return Ok(None);
    }
    store.api_token_by_hash(&hash(presented)).await
}

/// The tokens as text for a person (`ejgate token list`).
pub fn render(tokens: &[ApiToken]) -> String {
    if tokens.is_empty() {
        return "No API tokens: make one with `ejgate token create NAME`.\n".to_string();
    }
    let mut out = String::new();
    for t in tokens {
        out.push_str(&format!(
            "  {:<24} created {}  {}\n",
            t.name,
            t.created_at.format("%Y-%m-%d %H:%M UTC"),
            match t.revoked_at {
                None => "in force".to_string(),
                Some(at) => format!("revoked {}", at.format("%Y-%m-%d %H:%M UTC")),
            }
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing;

    #[tokio::test]
    async fn a_token_opens_until_it_is_revoked_and_only_its_hash_is_stored() {
        let dir = tempfile::tempdir().unwrap();
        let store = testing::sqlite(dir.path()).await;
        let token = create(&store, "grafana").await.unwrap();
        assert!(token.expose_secret().starts_with(PREFIX) && token.expose_secret().len() == 71);
        assert_ne!(token.expose_secret(), generate().expose_secret());
        assert_eq!(check(&store, &token).await.unwrap().map(|t| t.name), Some("grafana".to_string()));
        let other = SecretString::from(generate().expose_secret().to_string());
        assert_eq!(check(&store, &other).await.unwrap(), None);
        assert_eq!(check(&store, &SecretString::from("Bearer x".to_string())).await.unwrap(), None);

        let again = create(&store, "grafana").await.unwrap_err().to_string();
        assert!(again.contains("ejgate token revoke grafana"), "{again}");
        assert!(create(&store, "two words").await.unwrap_err().to_string().contains("cannot name"));

        assert!(revoke(&store, "grafana").await.unwrap());
        assert!(!revoke(&store, "grafana").await.unwrap(), "revoked once");
        assert_eq!(check(&store, &token).await.unwrap(), None, "a revoked token no longer opens");
        let listed = store.api_tokens().await.unwrap();
        assert_eq!(listed.len(), 1);
        assert!(listed[0].revoked_at.is_some());
        // The name is free again after a revocation; the old token stays shut.
        let renewed = create(&store, "grafana").await.unwrap();
        assert!(check(&store, &renewed).await.unwrap().is_some());
        assert_eq!(check(&store, &token).await.unwrap(), None);

        // What the store wrote (the database and its WAL) holds the hash, never the token.
        store.close().await;
        let mut file = Vec::new();
        for entry in std::fs::read_dir(dir.path()).unwrap() {
            file.extend(std::fs::read(entry.unwrap().path()).unwrap());
        }
        assert!(file.windows(32).any(|w| w == hash(&renewed)), "the hash is where the test looks");
        for t in [&token, &renewed] {
            let clear = t.expose_secret().as_bytes();
            assert!(!file.windows(clear.len()).any(|w| w == clear), "the token is not stored in clear");
            assert!(!file.windows(32).any(|w| w == &clear[7..39]), "nor its random part");
        }
    }
}
