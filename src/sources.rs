//! Building connectors from the configuration.

use std::sync::Arc;

use anyhow::Context;

use ejgate_dnevnik::{DnevnikConfig, DnevnikConnector};
use ejgate_epos::{EposConfig, EposConnector};
use ejgate_files::{FilesConfig, FilesConnector};
use ejgate_kiasuo::{KiasuoConfig, KiasuoConnector};
use ejgate_mosreg::{MosregBaseUrls, MosregConfig, MosregConnector};
use ejgate_sdk::connector::Connector;
use ejgate_sdk::model::EntityKind;
use ejgate_sdk::synth::SystemTruth;

use crate::compare::Tolerances;

use crate::config::{Config, SourceConfig, System};

/// What every API source's connector is built from.
struct ApiSettings {
    base: url::Url,
    token_ref: ejgate_sdk::secret::SecretRef,
    /// Where the token comes from, for messages (never the token).
    origin: String,
    mappings_dir: Option<std::path::PathBuf>,
    extra_root_certificates: Vec<std::path::PathBuf>,
}

impl ApiSettings {
    fn of(config: &Config, source: &SourceConfig) -> anyhow::Result<ApiSettings> {
        let token_ref = source.token_ref(config);
        if let Some(file) = &token_ref.file {
            check_token_file(source, file)?;
        }
        let origin = match (&token_ref.file, &token_ref.env) {
            (Some(file), _) => file.display().to_string(),
            (_, Some(var)) => format!("the environment variable {var}"),
            _ => "the token file".into(),
        };
        let base_url = source.base_url.as_deref().context("base_url is missing")?;
        let mut base = url::Url::parse(base_url)?;
        if !base.path().ends_with('/') {
            base.set_path(&format!("{}/", base.path()));
        }
        Ok(ApiSettings {
            base,
            token_ref,
            origin,
            mappings_dir: config.mappings_dir.as_deref().map(|p| config.resolve(p)),
            extra_root_certificates: source.extra_root_certificates.iter().map(|p| config.resolve(p)).collect(),
        })
    }

    fn load_token(&self, source: &SourceConfig) -> anyhow::Result<secrecy::SecretString> {
        Ok(self.token_ref.load(&format!("source «{}» token", source.name))?)
    }
}

/// A token file that users other than its owner may read or change is refused (a warning
/// with `allow_readable_token_file = true`), with the `chmod` that makes it private: the
/// token opens the whole school's journal. It was accepted without a word. The mode is the
/// one of the file a symbolic link points to; a file that cannot be read is left to the
/// token's own reading, which names it.
#[cfg(unix)]
pub fn check_token_file(source: &SourceConfig, file: &std::path::Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let Ok(meta) = std::fs::metadata(file) else { return Ok(()) };
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 == 0 {
        return Ok(());
    }
    let message = format!(
        "source «{}»: the token file {} can be read or changed by other users of this machine (mode {mode:04o})",
        source.name,
        file.display()
    );
    if source.allow_readable_token_file {
        tracing::warn!(
            "{message}; allowed by allow_readable_token_file (`chmod 600 {}` makes it private)",
            file.display()
        );
        return Ok(());
    }
    anyhow::bail!(
        "{message}: run `chmod 600 {}` (or set allow_readable_token_file = true in the source to go on with a warning)",
        file.display()
    )
}

#[cfg(not(unix))]
pub fn check_token_file(_source: &SourceConfig, _file: &std::path::Path) -> anyhow::Result<()> {
    Ok(())
}

/// Builds the connector of one configured source (reads its secret).
pub fn connector(config: &Config, source: &SourceConfig) -> anyhow::Result<Arc<dyn Connector>> {
    match source.system {
        System::Dnevnik => {
            let api = ApiSettings::of(config, source)?;
            let mut c = DnevnikConfig::new(&source.name, api.base.clone(), api.load_token(source)?);
            c.token_origin = api.origin;
            c.requests_per_second = source.requests_per_second;
            c.window_days = source.window_days;
            if let Some(days) = source.chunk_days {
                c.chunk_days = days;
            }
            c.school_ids = source.schools.clone();
            c.mappings_dir = api.mappings_dir;
            c.timeout = source.timeout();
            c.extra_root_certificates = api.extra_root_certificates;
            c.concurrency = source.concurrency;
            Ok(Arc::new(DnevnikConnector::new(c)?))
        }
        System::Epos => {
            let api = ApiSettings::of(config, source)?;
            let mut c = EposConfig::new(&source.name, api.base.clone(), api.load_token(source)?);
            c.token_origin = api.origin;
            c.requests_per_second = source.requests_per_second;
            c.window_days = source.window_days;
            if let Some(days) = source.chunk_days {
                c.chunk_days = days;
            }
            if let Some(hours) = source.utc_offset_hours {
                c.utc_offset_hours = hours;
            }
            c.mappings_dir = api.mappings_dir;
            c.school_ids = source.schools.clone();
            c.timeout = source.timeout();
            c.extra_root_certificates = api.extra_root_certificates;
            Ok(Arc::new(EposConnector::new(c)?))
        }
        System::Kiasuo => {
            // The refresh token is read (and rewritten on rotation) by the connector itself.
            let api = ApiSettings::of(config, source)?;
            let file = api.token_ref.file.clone().context("КИАСУО needs token_file")?;
            let mut c = KiasuoConfig::new(&source.name, api.base, file);
            c.requests_per_second = source.requests_per_second;
            c.window_days = source.window_days;
            c.mappings_dir = api.mappings_dir;
            c.timeout = source.timeout();
            c.extra_root_certificates = api.extra_root_certificates;
            c.concurrency = source.concurrency;
            c.schools = source.schools.clone();
            Ok(Arc::new(KiasuoConnector::new(c)?))
        }
        System::Mosreg => {
            let api = ApiSettings::of(config, source)?;
            let base = api.base.clone();
            let mut urls = if base.host_str() == Some("authedu.mosreg.ru") {
                MosregBaseUrls::production()
            } else {
                MosregBaseUrls::single(base.clone())
            };
            urls.web = base;
            if let Some(u) = &source.mobile_url {
                urls.mobile = url::Url::parse(u).with_context(|| format!("source «{}»: mobile_url", source.name))?;
            }
            if let Some(u) = &source.school_url {
                urls.school = url::Url::parse(u).with_context(|| format!("source «{}»: school_url", source.name))?;
            }
            let mut c = MosregConfig::new(&source.name, urls, api.load_token(source)?);
            c.token_origin = api.origin;
            // A refreshed token is written back to the token file (when there is one).
            c.token_file = api.token_ref.file.clone();
            c.requests_per_second = source.requests_per_second;
            c.window_days = source.window_days;
            if let Some(days) = source.chunk_days {
                c.chunk_days = days;
            }
            if let Some(hours) = source.utc_offset_hours {
                c.utc_offset_hours = hours;
            }
            c.mappings_dir = api.mappings_dir;
            c.school_ids = source.schools.clone();
            c.timeout = source.timeout();
            c.extra_root_certificates = api.extra_root_certificates;
            Ok(Arc::new(MosregConnector::new(c)?))
        }
        System::Files => {
            let dir = config.resolve(source.dir.as_deref().context("a files source needs `dir`")?);
            let files = match &source.mapping {
                Some(mapping) => FilesConfig::new(&source.name, dir, config.resolve(mapping)),
                None => FilesConfig::with_default_layout(&source.name, dir),
            };
            Ok(Arc::new(
                FilesConnector::new(files).with_context(|| format!("source «{}»: the mapping file", source.name))?,
            ))
        }
    }
}

/// A system's ground truth over a synthetic school: the kinds it fills, the fields it leaves
/// empty or gives to the minute (each connector's README says why), the expected counts.
pub fn truth(system: System) -> &'static SystemTruth {
    match system {
        System::Dnevnik => &ejgate_dnevnik::truth::TRUTH,
        System::Epos => &ejgate_epos::truth::TRUTH,
        System::Kiasuo => &ejgate_kiasuo::truth::TRUTH,
        System::Mosreg => &ejgate_mosreg::truth::TRUTH,
        System::Files => &ejgate_files::truth::TRUTH,
    }
}

/// What two systems both expose: the kinds, and what a comparison of the two must forgive
/// (fields one of them leaves empty, date-times one gives to the minute).
pub fn shared(a: System, b: System) -> (Vec<EntityKind>, Tolerances) {
    let (a, b) = (truth(a), truth(b));
    let kinds = a.exposed.iter().copied().filter(|k| b.exposed.contains(k)).collect();
    let union = |f: fn(&SystemTruth) -> &'static [(EntityKind, &'static str)]| {
        let mut v: Vec<_> = f(a).iter().chain(f(b)).copied().collect();
        v.sort();
        v.dedup();
        v
    };
    (kinds, Tolerances { left_out: union(|t| t.not_exposed_fields), to_the_minute: union(|t| t.to_the_minute_fields) })
}
