//! Building connectors from the configuration.

use std::sync::Arc;

use ejgate_dnevnik::{DnevnikConfig, DnevnikConnector};
use ejgate_sdk::connector::Connector;

use crate::config::{Config, SourceConfig, System};

/// Builds the connector of one configured source (reads its secret).
pub fn connector(config: &Config, source: &SourceConfig) -> anyhow::Result<Arc<dyn Connector>> {
    let token_ref = source.token_ref(config);
    let token = token_ref.load(&format!("source «{}» token", source.name))?;
    let origin = match (&token_ref.file, &token_ref.env) {
        (Some(file), _) => file.display().to_string(),
        (_, Some(var)) => format!("the environment variable {var}"),
        _ => "the token file".into(),
    };
    match source.system {
        System::Dnevnik => {
            let mut base = url::Url::parse(&source.base_url)?;
            if !base.path().ends_with('/') {
                base.set_path(&format!("{}/", base.path()));
            }
            let mut c = DnevnikConfig::new(&source.name, base, token);
            c.token_origin = origin;
            c.requests_per_second = source.requests_per_second;
            c.window_days = source.window_days;
            c.chunk_days = source.chunk_days;
            c.school_ids = source.schools.clone();
            c.mappings_dir = config.mappings_dir.as_deref().map(|p| config.resolve(p));
            c.timeout = source.timeout();
            c.extra_root_certificates = source.extra_root_certificates.iter().map(|p| config.resolve(p)).collect();
            c.concurrency = source.concurrency;
            Ok(Arc::new(DnevnikConnector::new(c)?))
        }
    }
}
