//! Место хранения копий: a backup target, local (a mounted drive, a directory) or network
//! (WebDAV), written the same way through OpenDAL: under a temporary name, renamed when
//! complete, read back and compared.

use std::path::PathBuf;

use opendal::{services, Operator};
use secrecy::ExposeSecret;

use super::retention::Keep;

/// One configured target, ready to use.
pub struct Target {
    pub name: String,
    /// Where it is, for people (a path or a URL without credentials).
    pub place: String,
    pub keep: Keep,
    op: Operator,
    /// A local target's directory: it must exist (an unmounted drive is a target that is
    /// down, not a directory to create on the system disk).
    local_dir: Option<PathBuf>,
}

/// Where a target is, as configured.
pub enum Place {
    Local(PathBuf),
    WebDav { url: url::Url, username: Option<String>, password: Option<secrecy::SecretString> },
}

impl Target {
    pub fn new(name: &str, place: Place, keep: Keep) -> anyhow::Result<Target> {
        // OpenDAL's HTTP transport (reqwest) for WebDAV; installing it again does nothing.
        opendal::install_default();
        let (op, place, local_dir) = match place {
            Place::Local(dir) => {
                let root = dir.to_str().ok_or_else(|| {
                    anyhow::anyhow!("backup target «{name}»: the path {} is not UTF-8", dir.display())
                })?;
                let op = Operator::new(services::Fs::default().root(root))?;
                (op, dir.display().to_string(), Some(dir))
            }
            Place::WebDav { url, username, password } => {
                let endpoint = format!(
                    "{}://{}{}",
                    url.scheme(),
                    url.host_str().unwrap_or_default(),
                    url.port().map(|p| format!(":{p}")).unwrap_or_default()
                );
                let mut builder = services::Webdav::default().endpoint(&endpoint).root(url.path());
                if let Some(user) = &username {
                    builder = builder.username(user);
                }
                if let Some(password) = &password {
                    builder = builder.password(password.expose_secret());
                }
                let op = Operator::new(builder)?;
                (op, format!("{endpoint}{}", url.path()), None)
            }
        };
        Ok(Target { name: name.to_string(), place, keep, op, local_dir })
    }

    /// Whether the target can be reached; the error says where and what to do.
    pub async fn check(&self) -> anyhow::Result<()> {
        if let Some(dir) = &self.local_dir {
            if !dir.is_dir() {
                anyhow::bail!(
                    "backup target «{}»: {} does not exist (is the drive mounted?): mount it or create the directory",
                    self.name,
                    dir.display()
                );
            }
        }
        self.op.list("/").await.map_err(|e| self.error("cannot be reached", e))?;
        Ok(())
    }

    fn error(&self, what: &str, e: opendal::Error) -> anyhow::Error {
        anyhow::Error::new(e).context(format!("backup target «{}» ({}): {what}", self.name, self.place))
    }

    /// Writes a file under a temporary name, renames it, reads it back and compares.
    pub async fn put(&self, name: &str, bytes: &[u8]) -> anyhow::Result<()> {
        let part = format!(".part-{name}");
        self.op.write(&part, bytes.to_vec()).await.map_err(|e| self.error(&format!("writing {part}"), e))?;
        self.op.rename(&part, name).await.map_err(|e| self.error(&format!("renaming {part} to {name}"), e))?;
        let back = self.get(name).await?;
        if back != bytes {
            anyhow::bail!(
                "backup target «{}» ({}): {name} read back differs from what was written ({} bytes written, {} read): \
                 check the storage",
                self.name,
                self.place,
                bytes.len(),
                back.len()
            );
        }
        Ok(())
    }

    pub async fn get(&self, name: &str) -> anyhow::Result<Vec<u8>> {
        Ok(self.op.read(name).await.map_err(|e| self.error(&format!("reading {name}"), e))?.to_vec())
    }

    /// The names of the files in the target's top directory.
    pub async fn names(&self) -> anyhow::Result<Vec<String>> {
        let entries = self.op.list("/").await.map_err(|e| self.error("listing", e))?;
        Ok(entries.into_iter().map(|e| e.name().trim_end_matches('/').to_string()).collect())
    }

    pub async fn delete(&self, name: &str) -> anyhow::Result<()> {
        self.op.delete(name).await.map_err(|e| self.error(&format!("deleting {name}"), e))
    }
}
