//! Secrets (tokens, refresh tokens, passwords): read from a file or an environment
//! variable, held in `secrecy` types, never printed. Configuration names *where* a secret
//! is, never the secret itself.

use std::path::PathBuf;

use secrecy::SecretString;
use serde::{Deserialize, Serialize};

/// Where a secret is kept: exactly one of `file` and `env`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct SecretRef {
    /// A file holding the secret (surrounding white space is trimmed). Keep it 0600.
    pub file: Option<PathBuf>,
    /// An environment variable holding the secret.
    pub env: Option<String>,
}

/// Why a secret could not be read. Never contains the secret.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("{what}: name either a file or an environment variable for the secret, not both and not neither")]
    Ambiguous { what: String },
    #[error("{what}: cannot read the secret file {path}: {source}")]
    File {
        what: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{what}: the environment variable {var} is not set")]
    Env { what: String, var: String },
    #[error("{what}: the secret in {place} is empty")]
    Empty { what: String, place: String },
}

impl SecretRef {
    pub fn file(path: impl Into<PathBuf>) -> Self {
        SecretRef { file: Some(path.into()), env: None }
    }

    pub fn env(var: impl Into<String>) -> Self {
        SecretRef { file: None, env: Some(var.into()) }
    }

    /// Reads the secret. `what` names it in errors ("source «dnevnik» token").
    pub fn load(&self, what: &str) -> Result<SecretString, SecretError> {
        let (value, place) = match (&self.file, &self.env) {
            (Some(path), None) => {
                let text = std::fs::read_to_string(path).map_err(|source| SecretError::File {
                    what: what.to_string(),
                    path: path.clone(),
                    source,
                })?;
                (text, path.display().to_string())
            }
            (None, Some(var)) => {
                let text =
                    std::env::var(var).map_err(|_| SecretError::Env { what: what.to_string(), var: var.clone() })?;
                (text, format!("${var}"))
            }
            _ => return Err(SecretError::Ambiguous { what: what.to_string() }),
        };
        let trimmed = value.trim();
        if trimmed.is_empty() {
            return Err(SecretError::Empty { what: what.to_string(), place });
        }
        Ok(SecretString::from(trimmed.to_string()))
    }
}

/// Writes a secret to `path` so that the file holds either the old or the new secret, never
/// a part: a temporary file beside it (mode 0600 on Unix), written, fsynced, renamed over
/// `path`, and the directory fsynced. For rotating credentials (КИАСУО's refresh token),
/// which must be on disk before the token they came with is used.
///
/// When `path` is a symbolic link (an operator keeping the secret elsewhere), the file it
/// points to is replaced and the link is kept: renaming over the link itself would turn it
/// into a plain file and leave the target holding a dead token.
pub fn persist_atomically(path: &std::path::Path, secret: &SecretString) -> std::io::Result<()> {
    use secrecy::ExposeSecret;
    use std::io::Write;
    let target = link_target(path)?;
    let path = target.as_path();
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "secret".into());
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let result = (|| {
        let mut file = options.open(&tmp)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        }
        file.write_all(secret.expose_secret().as_bytes())?;
        file.write_all(b"\n")?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&tmp, path)?;
        #[cfg(unix)]
        std::fs::File::open(&dir)?.sync_all()?;
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// The file a chain of symbolic links ends at (`path` itself when it is none); a relative
/// link is read against the link's directory. The last link may point to a file that does
/// not exist yet.
fn link_target(path: &std::path::Path) -> std::io::Result<PathBuf> {
    let mut current = path.to_path_buf();
    for _ in 0..40 {
        match std::fs::symlink_metadata(&current) {
            Ok(m) if m.file_type().is_symlink() => {
                let link = std::fs::read_link(&current)?;
                current = match current.parent() {
                    Some(dir) if link.is_relative() => dir.join(link),
                    _ => link,
                };
            }
            _ => return Ok(current),
        }
    }
    Err(std::io::Error::other(format!("{}: too many levels of symbolic links", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn reads_a_file_trimmed_and_hides_it_from_debug() {
        let dir = std::env::temp_dir().join(format!("ejgate-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("token");
        std::fs::write(&path, "s3cr3t-value\n").unwrap();
        let secret = SecretRef::file(&path).load("test token").unwrap();
        assert_eq!(secret.expose_secret(), "s3cr3t-value");
        assert!(!format!("{secret:?}").contains("s3cr3t"));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn errors_name_the_place_not_the_secret() {
        let err = SecretRef::env("EJGATE_TEST_SURELY_UNSET_VAR").load("source «x» token").unwrap_err();
        assert!(err.to_string().contains("EJGATE_TEST_SURELY_UNSET_VAR"));
        let err = SecretRef::default().load("t").unwrap_err();
        assert!(matches!(err, SecretError::Ambiguous { .. }));
    }

    #[test]
    fn persists_atomically_with_mode_0600() {
        let dir = std::env::temp_dir().join(format!("ejgate-persist-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("refresh");
        std::fs::write(&path, "old\n").unwrap();
        persist_atomically(&path, &SecretString::from("0123456789abcdef0123456789abcdef".to_string())).unwrap();
        assert_eq!(SecretRef::file(&path).load("t").unwrap().expose_secret(), "0123456789abcdef0123456789abcdef");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1, "no temporary file is left");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn persisting_through_a_symlink_replaces_its_target_and_keeps_the_link() {
        let dir = std::env::temp_dir().join(format!("ejgate-persist-link-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("vault")).unwrap();
        let target = dir.join("vault/refresh");
        std::fs::write(&target, "old\n").unwrap();
        let link = dir.join("token");
        std::os::unix::fs::symlink("vault/refresh", &link).unwrap();
        persist_atomically(&link, &SecretString::from("fedcba9876543210fedcba9876543210".to_string())).unwrap();
        assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink(), "the link is kept");
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "fedcba9876543210fedcba9876543210\n");
        assert_eq!(std::fs::read_dir(dir.join("vault")).unwrap().count(), 1, "no temporary file is left");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
