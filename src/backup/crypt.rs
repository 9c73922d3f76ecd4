//! Шифрование резервной копии: zstd, then age — to the recipients' public keys, or to the
//! director's passphrase (scrypt; REGULATIONS A8: a code only the director knows). The age
//! format allows a passphrase only as the file's sole recipient, so a configuration names
//! one or the other (checked when it loads).

use std::io::{BufReader, BufWriter, Read, Write};
use std::path::Path;

use secrecy::SecretString;
use sha2::{Digest, Sha256};

/// How backups are sealed.
pub enum Sealing {
    /// X25519 recipients (`age1…`): whoever holds one of the matching identity files opens
    /// the backups.
    Recipients(Vec<age::x25519::Recipient>),
    /// The director's passphrase.
    Passphrase(SecretString),
}

impl Sealing {
    /// The encryption, as the manifest names it.
    pub fn describe(&self) -> &'static str {
        match self {
            Sealing::Recipients(_) => "age-x25519",
            Sealing::Passphrase(_) => "age-scrypt",
        }
    }

    /// The public keys (nothing secret), for the manifest.
    pub fn recipients(&self) -> Vec<String> {
        match self {
            Sealing::Recipients(r) => r.iter().map(ToString::to_string).collect(),
            Sealing::Passphrase(_) => Vec::new(),
        }
    }
}

/// What opens backups: identity files and/or the passphrase (whichever a backup needs).
#[derive(Default)]
pub struct Opening {
    pub identities: Vec<Box<dyn age::Identity + Send + Sync>>,
    pub passphrase: Option<SecretString>,
}

impl Opening {
    pub fn is_empty(&self) -> bool {
        self.identities.is_empty() && self.passphrase.is_none()
    }

    /// Reads an age identity file (`age-keygen` writes one).
    pub fn add_identity_file(&mut self, path: &Path) -> anyhow::Result<()> {
        let file = age::IdentityFile::from_file(path.display().to_string())
            .map_err(|e| anyhow::anyhow!("cannot read the age identity file {}: {e}", path.display()))?;
        let identities = file.into_identities().map_err(|e| {
            anyhow::anyhow!("the age identity file {} holds no identity ejgate can use: {e}", path.display())
        })?;
        self.identities.extend(identities);
        Ok(())
    }
}

/// sha256 (hex) and length of what went through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digested {
    pub sha256: String,
    pub bytes: u64,
}

/// Compresses and encrypts the file `plain` into `sealed`; the digest is the plaintext's.
pub fn seal(plain: &Path, sealed: &Path, sealing: &Sealing) -> anyhow::Result<Digested> {
    let encryptor = match sealing {
        Sealing::Recipients(r) => age::Encryptor::with_recipients(r.iter().map(|r| r as &dyn age::Recipient))
            .map_err(|e| anyhow::anyhow!("age: {e}"))?,
        Sealing::Passphrase(p) => age::Encryptor::with_user_passphrase(p.clone()),
    };
    let out = std::fs::File::create(sealed)?;
    let writer = encryptor.wrap_output(BufWriter::new(out))?;
    let mut zstd = zstd::Encoder::new(writer, 3)?;
    let digested = copy_digesting(&mut BufReader::new(std::fs::File::open(plain)?), &mut zstd)?;
    let writer = zstd.finish()?;
    let out = writer.finish()?.into_inner().map_err(|e| e.into_error())?;
    out.sync_all()?;
    Ok(digested)
}

/// Decrypts and decompresses `sealed` into the file `plain`; the digest is the plaintext's.
pub fn unseal(sealed: &[u8], plain: &Path, opening: &Opening) -> anyhow::Result<Digested> {
    let decryptor = age::Decryptor::new_buffered(sealed).map_err(|e| anyhow::anyhow!("not an age file: {e}"))?;
    let reader = if decryptor.is_scrypt() {
        let Some(passphrase) = &opening.passphrase else {
            anyhow::bail!(
                "the backup is sealed with the director's passphrase: give it (backup.passphrase_file or \
                 backup.passphrase_env)"
            )
        };
        let identity = age::scrypt::Identity::new(passphrase.clone());
        decryptor
            .decrypt(std::iter::once(&identity as &dyn age::Identity))
            .map_err(|e| anyhow::anyhow!("the passphrase does not open the backup: {e}"))?
    } else {
        if opening.identities.is_empty() {
            anyhow::bail!(
                "the backup is sealed to age recipients: give the identity file of one of them (--identity FILE or \
                 backup.identity_file)"
            )
        }
        decryptor
            .decrypt(opening.identities.iter().map(|i| i.as_ref() as &dyn age::Identity))
            .map_err(|e| anyhow::anyhow!("none of the identities given opens the backup: {e}"))?
    };
    let mut zstd = zstd::Decoder::new(reader)?;
    let mut out = BufWriter::new(std::fs::File::create(plain)?);
    let digested = copy_digesting(&mut zstd, &mut out)?;
    out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    Ok(digested)
}

/// sha256 (hex) of bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// sha256 (hex) and length of a file.
pub fn digest_file(path: &Path) -> std::io::Result<Digested> {
    copy_digesting(&mut BufReader::new(std::fs::File::open(path)?), &mut std::io::sink())
}

fn copy_digesting(from: &mut impl Read, to: &mut impl Write) -> std::io::Result<Digested> {
    let mut hasher = Sha256::new();
    let mut bytes = 0u64;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = from.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        to.write_all(&buf[..n])?;
        bytes += n as u64;
    }
    to.flush()?;
    Ok(Digested { sha256: hex::encode(hasher.finalize()), bytes })
}
