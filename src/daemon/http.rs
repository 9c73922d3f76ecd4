//! The HTTP side of `ejgate serve` (axum), on `[serve] listen` (loopback by default):
//!
//! | path | answers |
//! |---|---|
//! | `GET /healthz` | 200 while the process runs |
//! | `GET /readyz` | 200 when the store answers and the schedules are loaded, else 503; JSON saying which |
//! | `GET /metrics` | the metrics ([`super::metrics`]) |
//! | `GET /api/v1/runs?limit=N` | the newest sync runs (50 by default, at most 1,000) |
//! | `GET /api/v1/sources` | each configured source: its newest run, last success, alerts |
//! | `GET /api/v1/jobs` | the loaded jobs with their next time and their newest run (503 until they are loaded) |
//! | `GET /api/v1/jobs/{name}/runs?limit=N` | the job's runs, newest slot first (50 by default, at most 1,000) |
//!
//! `/api/…` needs `Authorization: Bearer <token>` (a token of `ejgate token create`); without
//! one, or with one that is wrong or revoked, the answer is 401 with a JSON error. The
//! health checks and `/metrics` need none: they say nothing about pupils, and scrapers and
//! probes seldom carry tokens. Tokens are never logged: the header is read into a
//! [`SecretString`] and only its hash goes further.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::Utc;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::config::Config;
use crate::schedule::Job;
use crate::status::RunView;
use crate::store::Store;

/// How long `/readyz` waits for the store before it calls it unreachable.
pub const READY_TIMEOUT: Duration = Duration::from_secs(3);

/// What the handlers share.
#[derive(Clone)]
pub struct HttpState {
    pub store: Arc<dyn Store>,
    pub config: Arc<Config>,
    /// The jobs of the schedules, once loaded (`None` before: `/readyz` answers 503).
    jobs: Arc<RwLock<Option<Arc<Vec<Job>>>>>,
}

impl HttpState {
    pub fn new(store: Arc<dyn Store>, config: Arc<Config>) -> HttpState {
        HttpState { store, config, jobs: Arc::new(RwLock::new(None)) }
    }

    /// The schedules are loaded: `/readyz` can say ready and `/api/v1/jobs` lists them.
    pub fn set_jobs(&self, jobs: Vec<Job>) {
        *self.jobs.write().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(jobs));
    }

    fn jobs(&self) -> Option<Arc<Vec<Job>>> {
        self.jobs.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// The HTTP server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error(
        "cannot listen on {addr}: {source}. Another program (another `ejgate serve`?) may use it: choose another \
         address in [serve] listen of ejgate.toml"
    )]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error("the HTTP server on {addr} stopped: {source}")]
    Serve { addr: SocketAddr, source: std::io::Error },
}

/// The routes, for [`serve_on`] and for tests that call them in-process.
pub fn router(state: HttpState) -> Router {
    let api = Router::new()
        .route("/api/v1/runs", get(runs))
        .route("/api/v1/sources", get(sources))
        .route("/api/v1/jobs", get(jobs))
        .route("/api/v1/jobs/{name}/runs", get(job_runs))
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), require_token));
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .merge(api)
        .fallback(|| async {
            error(
                StatusCode::NOT_FOUND,
                "no such page",
                "see /api/v1/runs, /api/v1/sources, /api/v1/jobs, /metrics, /healthz, /readyz",
            )
        })
        .with_state(state)
}

/// Binds `listen`; [`serve_on`] then serves on it (the address it got, for port 0, is
/// `local_addr()`).
pub async fn bind(listen: SocketAddr) -> Result<tokio::net::TcpListener, HttpError> {
    tokio::net::TcpListener::bind(listen).await.map_err(|source| HttpError::Bind { addr: listen, source })
}

/// Serves until `shutdown` completes, then finishes the requests under way.
pub async fn serve_on(
    listener: tokio::net::TcpListener,
    state: HttpState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), HttpError> {
    let addr = listener
        .local_addr()
        .map_err(|source| HttpError::Serve { addr: SocketAddr::from(([0, 0, 0, 0], 0)), source })?;
    tracing::info!("HTTP on http://{addr}: /healthz, /readyz, /metrics, /api/v1/");
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|source| HttpError::Serve { addr, source })
}

/// Binds `listen` and serves until `shutdown` completes: what `ejgate serve` runs beside
/// its scheduler.
pub async fn serve_http(
    listen: SocketAddr,
    state: HttpState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), HttpError> {
    serve_on(bind(listen).await?, state, shutdown).await
}

/// A JSON error: what went wrong and what to do.
fn error(status: StatusCode, message: &str, what_to_do: &str) -> Response {
    (status, Json(json!({ "error": message, "what_to_do": what_to_do }))).into_response()
}

fn store_error(e: crate::store::StoreError) -> Response {
    tracing::warn!("HTTP: the store failed: {e}");
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        &e.to_string(),
        "check the disk or the database server; `/readyz` says when the store answers again",
    )
}

/// `/api/…`: the request must carry a token in force.
async fn require_token(State(state): State<HttpState>, request: Request, next: Next) -> Response {
    let presented = bearer(request.headers());
    let refused = |message: &str| {
        let mut response = error(
            StatusCode::UNAUTHORIZED,
            message,
            "send `Authorization: Bearer <token>` with a token made by `ejgate token create NAME` on the server",
        );
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer realm=\"ejgate\""));
        response
    };
    let Some(presented) = presented else {
        tracing::debug!(path = %request.uri().path(), "API request without a bearer token refused");
        return refused("this API needs a bearer token");
    };
    match super::tokens::check(state.store.as_ref(), &presented).await {
        Ok(Some(token)) => {
            tracing::debug!(path = %request.uri().path(), token = %token.name, "API request");
            next.run(request).await
        }
        Ok(None) => {
            tracing::info!(path = %request.uri().path(), "API request with an unknown or revoked token refused");
            refused("the bearer token is unknown or revoked")
        }
        Err(e) => store_error(e),
    }
}

/// The token of an `Authorization: Bearer …` header.
fn bearer(headers: &HeaderMap) -> Option<SecretString> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| SecretString::from(token.trim().to_string()))
}

/// What `/readyz` says.
#[derive(Debug, Serialize)]
struct Readiness {
    ready: bool,
    store: String,
    schedules: String,
}

async fn readyz(State(state): State<HttpState>) -> Response {
    let store = match tokio::time::timeout(READY_TIMEOUT, state.store.ping()).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(format!("the store does not answer: {e}")),
        Err(_) => Err(format!("the store did not answer within {} s", READY_TIMEOUT.as_secs())),
    };
    let jobs = state.jobs();
    let ready = store.is_ok() && jobs.is_some();
    let body = Readiness {
        ready,
        store: match store {
            Ok(()) => format!("ok ({})", state.store.backend()),
            Err(e) => e,
        },
        schedules: match jobs {
            Some(jobs) => format!("loaded: {} job(s)", jobs.len()),
            None => "not loaded yet".to_string(),
        },
    };
    if !ready {
        tracing::debug!(store = %body.store, schedules = %body.schedules, "not ready");
    }
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(body)).into_response()
}

async fn metrics(State(state): State<HttpState>, headers: HeaderMap) -> Response {
    let format = super::metrics::Format::from_accept(headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()));
    let jobs = state.jobs().unwrap_or_default();
    match super::metrics::render(state.store.as_ref(), &state.config, &jobs, format).await {
        Ok(text) => ([(header::CONTENT_TYPE, format.content_type())], text).into_response(),
        Err(e) => store_error(e),
    }
}

#[derive(Debug, Deserialize)]
struct RunsQuery {
    limit: Option<u32>,
}

/// The most runs one answer lists.
const MAX_RUNS: u32 = 1000;

async fn runs(State(state): State<HttpState>, Query(query): Query<RunsQuery>) -> Response {
    let limit = query.limit.unwrap_or(50).clamp(1, MAX_RUNS);
    match state.store.runs(limit).await {
        Ok(runs) => Json(json!({ "runs": runs.into_iter().map(RunView::from).collect::<Vec<_>>() })).into_response(),
        Err(e) => store_error(e),
    }
}

/// A source as `/api/v1/sources` shows it.
#[derive(Debug, Serialize)]
struct SourceView {
    name: String,
    system: &'static str,
    last_success: Option<chrono::DateTime<Utc>>,
    last_run: Option<RunView>,
    alerts: Vec<crate::alerts::Alert>,
}

async fn sources(State(state): State<HttpState>) -> Response {
    let store = state.store.as_ref();
    let read = async {
        let alerts = crate::alerts::check_alerts(store, &state.config).await?;
        let last_runs = store.last_finished_runs().await?;
        let totals = store.run_totals().await?;
        Ok::<_, crate::store::StoreError>((alerts, last_runs, totals))
    };
    let (alerts, last_runs, totals) = match read.await {
        Ok(read) => read,
        Err(e) => return store_error(e),
    };
    let views: Vec<SourceView> = state
        .config
        .sources
        .iter()
        .map(|s| SourceView {
            name: s.name.clone(),
            system: s.system.as_str(),
            last_success: totals
                .iter()
                .filter(|t| t.source == s.name && t.status == crate::store::RunStatus::Succeeded)
                .filter_map(|t| t.last_finished_at)
                .max(),
            last_run: last_runs.iter().find(|r| r.source == s.name).cloned().map(RunView::from),
            alerts: alerts.iter().filter(|a| a.source == s.name).cloned().collect(),
        })
        .collect();
    Json(json!({ "sources": views })).into_response()
}

/// A job as `/api/v1/jobs` shows it.
#[derive(Debug, Serialize)]
struct JobView {
    name: String,
    kind: &'static str,
    target: String,
    cron: String,
    time_zone: String,
    next_local: Option<String>,
    next_utc: Option<chrono::DateTime<Utc>>,
    file: String,
    /// The newest run (by slot), if the job has one.
    last_run: Option<crate::store::JobRun>,
}

async fn jobs(State(state): State<HttpState>) -> Response {
    let Some(jobs) = state.jobs() else {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the schedules are not loaded yet",
            "ask again in a moment; `/readyz` says when they are",
        );
    };
    let mut last: std::collections::HashMap<String, crate::store::JobRun> = match state.store.last_job_runs().await {
        Ok(runs) => runs.into_iter().map(|r| (r.job.clone(), r)).collect(),
        Err(e) => return store_error(e),
    };
    let now = Utc::now();
    let views: Vec<JobView> = jobs
        .iter()
        .map(|j| {
            let next = j.next_after(now);
            JobView {
                name: j.name.clone(),
                kind: j.kind.as_str(),
                target: j.target.to_string(),
                cron: j.cron_line.clone(),
                time_zone: j.time_zone.name().to_string(),
                next_local: next.map(|t| t.to_rfc3339()),
                next_utc: next.map(|t| t.with_timezone(&Utc)),
                file: format!("{}:{}", j.file.display(), j.line),
                last_run: last.remove(&j.name),
            }
        })
        .collect();
    Json(json!({ "jobs": views })).into_response()
}

async fn job_runs(
    State(state): State<HttpState>,
    Path(name): Path<String>,
    Query(query): Query<RunsQuery>,
) -> Response {
    if state.jobs().is_some_and(|jobs| !jobs.iter().any(|j| j.name == name)) {
        return error(StatusCode::NOT_FOUND, &format!("there is no job «{name}»"), "`/api/v1/jobs` lists the jobs");
    }
    let limit = query.limit.unwrap_or(50).clamp(1, MAX_RUNS);
    match state.store.job_runs(Some(&name), limit).await {
        Ok(runs) => Json(json!({ "job": name, "runs": runs })).into_response(),
        Err(e) => store_error(e),
    }
}
