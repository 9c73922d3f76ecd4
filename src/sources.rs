//! Building connectors from the configuration.

use std::sync::Arc;

use anyhow::Context;

use ejgate_dnevnik::{DnevnikConfig, DnevnikConnector};
use ejgate_epos::{EposConfig, EposConnector};
use ejgate_kiasuo::{KiasuoConfig, KiasuoConnector};
use ejgate_mosreg::{MosregBaseUrls, MosregConfig, MosregConnector};
use ejgate_sdk::connector::Connector;

use crate::config::{Config, SourceConfig, System};

/// Builds the connector of one configured source (reads its secret).
pub fn connector(config: &Config, source: &SourceConfig) -> anyhow::Result<Arc<dyn Connector>> {
    let token_ref = source.token_ref(config);
    let origin = match (&token_ref.file, &token_ref.env) {
        (Some(file), _) => file.display().to_string(),
        (_, Some(var)) => format!("the environment variable {var}"),
        _ => "the token file".into(),
    };
    let mut base = url::Url::parse(&source.base_url)?;
    if !base.path().ends_with('/') {
        base.set_path(&format!("{}/", base.path()));
    }
    let mappings_dir = config.mappings_dir.as_deref().map(|p| config.resolve(p));
    let extra_root_certificates: Vec<_> = source.extra_root_certificates.iter().map(|p| config.resolve(p)).collect();
    let load_token = || token_ref.load(&format!("source «{}» token", source.name));
    match source.system {
        System::Dnevnik => {
            let token = load_token()?;
            let mut c = DnevnikConfig::new(&source.name, base, token);
            c.token_origin = origin;
            c.requests_per_second = source.requests_per_second;
            c.window_days = source.window_days;
            c.chunk_days = source.chunk_days;
            c.school_ids = source.schools.clone();
            c.mappings_dir = mappings_dir;
            c.timeout = source.timeout();
            c.extra_root_certificates = extra_root_certificates;
            c.concurrency = source.concurrency;
            Ok(Arc::new(DnevnikConnector::new(c)?))
        }
        System::Epos => {
            let mut c = EposConfig::new(&source.name, base, load_token()?);
            c.token_origin = origin;
            c.requests_per_second = source.requests_per_second;
            c.window_days = source.window_days;
            c.chunk_days = source.chunk_days;
            if let Some(hours) = source.utc_offset_hours {
                c.utc_offset_hours = hours;
            }
            c.mappings_dir = mappings_dir;
            c.timeout = source.timeout();
            c.extra_root_certificates = extra_root_certificates;
            Ok(Arc::new(EposConnector::new(c)?))
        }
        System::Kiasuo => {
            // The refresh token is read (and rewritten on rotation) by the connector itself.
            let file = token_ref.file.clone().context("КИАСУО needs token_file")?;
            let mut c = KiasuoConfig::new(&source.name, base, file);
            c.requests_per_second = source.requests_per_second;
            c.window_days = source.window_days;
            c.mappings_dir = mappings_dir;
            c.timeout = source.timeout();
            c.extra_root_certificates = extra_root_certificates;
            c.concurrency = source.concurrency;
            Ok(Arc::new(KiasuoConnector::new(c)?))
        }
        System::Mosreg => {
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
            let mut c = MosregConfig::new(&source.name, urls, load_token()?);
            c.token_origin = origin;
            // A refreshed token is written back to the token file (when there is one).
            c.token_file = token_ref.file.clone();
            c.requests_per_second = source.requests_per_second;
            c.window_days = source.window_days;
            c.chunk_days = source.chunk_days;
            if let Some(hours) = source.utc_offset_hours {
                c.utc_offset_hours = hours;
            }
            c.mappings_dir = mappings_dir;
            c.timeout = source.timeout();
            c.extra_root_certificates = extra_root_certificates;
            Ok(Arc::new(MosregConnector::new(c)?))
        }
    }
}
