//! The PostgreSQL backend: municipality and region scale, several `ejgate serve` workers on
//! one database.
//!
//! - Bulk writes send each batch as a handful of arrays, one statement per step:
//!   `… FROM UNNEST($4::text[], $5::uuid[], …) WITH ORDINALITY`. The upsert step is a
//!   single statement whose data-modifying CTE writes the change rows while the main
//!   `INSERT … ON CONFLICT` writes the records; all parts of one statement see the same
//!   snapshot, so `before` is the content as it was before this batch.
//! - Change-log order: `apply` takes a transaction-level advisory lock ([`CHANGE_LOG_LOCK`])
//!   before it writes change rows. Appliers therefore commit one after another and `seq`
//!   order is commit order: a reader following `changes_since(n)` never misses a row that
//!   a slower transaction committed later with a smaller `seq`. Only the writing of a batch
//!   is serialized; fetching from the sources (the slow part) runs in parallel.
//! - Lookups by id write the source check as `(source = $n) IS TRUE`, which no index
//!   serves, so that the planner goes by the primary key. With `source = $n` and the
//!   statistics of a table still filling up (a first sync, before autovacuum's analyze), it
//!   took the coverage index on `source` and read every record of the source for each
//!   batch of ids. (The SQLite backend does the same with `+source`.)
//! - Text order is byte order (`COLLATE "C"`), the same as SQLite's, whatever the
//!   database's collation.

use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions, PgRow};
use sqlx::types::Json;
use sqlx::Row;
use uuid::Uuid;

use ejgate_sdk::model::{DateRange, EntityKind};

use super::aggregates::{self, AggregateRequest, SchoolAggregates};
use super::{
    check_change_set, now_micros, ttl_millis, ApiToken, BackupAction, BackupOutcome, BackupTargetState, BackupUse,
    ChangeOp, ChangeRow, ChangeSet, CompromisedLogin, ContentRow, CursorUpdate, Existing, Inspection, KindCount,
    LeaseInfo, LeaseOutcome, LeaseRequest, PaperCopy, PaperCopyChange, RawRecord, RawRecordVisitor, RecordVisitor,
    RunError, RunErrorKind, RunId, RunStats, RunStatus, RunTotals, Store, StoreError, StoreResult, StoredFinding,
    StoredRecord, SyncRun, Upsert,
};

const BACKEND: &str = "postgres";

/// The daemon's job runs (`super::JobStore`).
mod jobs;

/// Backups: one consistent export, and its restore into a fresh schema.
pub mod export;

static MIGRATOR: Migrator = sqlx::migrate!("src/store/migrations/postgres");

/// Key of the transaction-level advisory lock that orders change-log writers
/// (`"ejgate" 0x0001` as bytes).
const CHANGE_LOG_LOCK: i64 = 0x656a_6761_7465_0001;

const MAX_CONNECTIONS: u32 = 10;

/// The statement of [`Store::journal_aggregates`] (see `super::aggregates`): $1 schools,
/// $2 spans (disjoint pieces), $3 sources, as JSON; $4 the characters of a blank topic; $5
/// the journals (an array the planner reads the `records_coverage` index by).
const JOURNAL_AGGREGATES: &str = concat!(
    "
WITH schools AS MATERIALIZED (
    SELECT * FROM jsonb_to_recordset($1::jsonb) AS x(school bigint, journal text, due bigint, findings text)
), spans AS MATERIALIZED (
    SELECT * FROM jsonb_to_recordset($2::jsonb) AS x(school bigint, span bigint, day_from date, day_to date)
), sources AS MATERIALIZED (
    SELECT * FROM jsonb_to_recordset($3::jsonb) AS x(school bigint, source text)
), lessons AS MATERIALIZED (
    SELECT k.school, s.span, k.journal AS source, r.id::text AS key, (r.content->>'date')::date AS day,
           r.content->>'unit' AS unit, r.content->>'subject' AS subject,
           btrim(coalesce(r.content->>'topic', ''), $4) <> '' AS topic, k.due
    FROM schools k
    JOIN records r ON r.source = k.journal AND r.kind = 'lesson' AND r.deleted_at IS NULL
    JOIN spans s ON s.school = k.school AND (r.content->>'date')::date BETWEEN s.day_from AND s.day_to
    WHERE r.content->>'status' = 'held' AND r.source = ANY($5)
), marks AS (
    -- The lessons again, not the CTE: a plan over base tables only can run in parallel.
    SELECT school, span, count(*) AS marks, count(*) FILTER (WHERE judged) AS judged,
           count(*) FILTER (WHERE on_time) AS on_time
    FROM (
        SELECT s.school, s.span, k.due IS NOT NULL AND m.content->>'entered_at' IS NOT NULL AS judged,
               (m.content->>'entered_at')::timestamp
                   <= (r.content->>'date')::date + make_interval(secs => k.due::double precision) AS on_time
        FROM jsonb_to_recordset($1::jsonb) AS k(school bigint, journal text, due bigint, findings text)
        JOIN jsonb_to_recordset($2::jsonb) AS s(school bigint, span bigint, day_from date, day_to date)
          ON s.school = k.school
        JOIN records r ON r.source = k.journal AND r.kind = 'lesson' AND r.deleted_at IS NULL
         AND r.content->>'status' = 'held' AND (r.content->>'date')::date BETWEEN s.day_from AND s.day_to
        JOIN records m ON m.source = r.source AND m.kind = 'mark' AND m.deleted_at IS NULL
         AND m.content->>'lesson' = r.id::text
        WHERE r.source = ANY($5) AND m.source = ANY($5)
    ) x
    GROUP BY school, span
), homework AS (
    SELECT l.school, l.span, count(*) AS n FROM lessons l
    WHERE EXISTS (SELECT 1 FROM records h WHERE h.source = l.source AND h.kind = 'homework'
                  AND h.deleted_at IS NULL AND h.content->>'lesson' = l.key AND h.source = ANY($5))
    GROUP BY l.school, l.span
), enrolled AS MATERIALIZED (
    SELECT e.source, e.content->>'unit' AS unit, e.content->>'student' AS student FROM records e
    WHERE e.kind = 'enrollment' AND e.deleted_at IS NULL AND e.source IN (SELECT journal FROM schools)
      AND e.content->>'status' = 'active'
), taught AS MATERIALIZED (
    SELECT DISTINCT school, span, source, unit, subject FROM lessons WHERE subject IS NOT NULL
), pairs AS (
    SELECT school, span, count(*) AS n FROM (
        SELECT DISTINCT t.school, t.span, e.student, t.subject
        FROM taught t JOIN enrolled e ON e.source = t.source AND e.unit = t.unit
    ) p GROUP BY school, span
), events AS (
    SELECT r.source, r.content->>'person' AS person, (r.content->>'date')::date AS day FROM records r
    WHERE r.kind = 'user_activity' AND r.deleted_at IS NULL AND r.source IN (SELECT source FROM sources)
    UNION ALL
    SELECT r.source, r.content->>'guardian', (r.content->>'at')::timestamp::date FROM records r
    WHERE r.kind = 'acknowledgement' AND r.deleted_at IS NULL AND r.source IN (SELECT source FROM sources)
), reading AS (
    SELECT x.school, s.span, count(DISTINCT e.person) AS n
    FROM sources x
    JOIN events e ON e.source = x.source
    JOIN spans s ON s.school = x.school AND e.day BETWEEN s.day_from AND s.day_to
    WHERE EXISTS (SELECT 1 FROM records p WHERE p.id = e.person::uuid AND p.source = e.source
                  AND p.kind = 'person' AND p.deleted_at IS NULL AND p.content->'roles' ? 'guardian')
    GROUP BY x.school, s.span
), people AS (
    SELECT x.school, x.source,
           count(*) FILTER (WHERE p.content->'roles' ? 'student') AS students,
           count(*) FILTER (WHERE p.content->'roles' ? 'staff') AS staff,
           count(*) FILTER (WHERE p.content->'roles' ? 'guardian') AS guardians
    FROM sources x JOIN records p ON p.source = x.source AND p.kind = 'person' AND p.deleted_at IS NULL
    GROUP BY x.school, x.source
), found AS (
    SELECT k.school, f.rule,
           (SELECT min(s.span) FROM spans s WHERE s.school = k.school AND CASE WHEN f.date IS NOT NULL
                THEN f.date BETWEEN s.day_from AND s.day_to
                ELSE (f.first_detected AT TIME ZONE 'UTC')::date <= s.day_to
                     AND (f.fixed_at IS NULL OR (f.fixed_at AT TIME ZONE 'UTC')::date >= s.day_from) END) AS span
    FROM schools k JOIN findings f ON f.school = k.findings
)
",
    super::aggregates::counted_rows!()
);

/// The PostgreSQL store. Cheap to clone (the pool is shared).
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
}

/// A database error of `operation`; a copy may be used for every column of a row.
fn db(operation: &'static str) -> impl Fn(sqlx::Error) -> StoreError + Copy {
    move |source| StoreError::Database { backend: BACKEND, operation, source }
}

impl PostgresStore {
    /// Connects to the database a `postgres://…` URL names and runs the migrations. The
    /// tables go to the first schema of the connection's `search_path` (choose one with
    /// `?options=-c%20search_path%3Dmyschema`).
    pub async fn open(url: &str) -> StoreResult<Self> {
        let options =
            PgConnectOptions::from_str(url).map_err(|e| StoreError::Invalid(format!("bad PostgreSQL URL: {e}")))?;
        let root_cert = root_cert_of(url);
        if let Some(path) = &root_cert {
            check_root_cert(&options, path)?;
        }
        // One connection first, so that a server that is not there, a wrong port or a
        // missing database is told at once with the host, the port and the server's or the
        // OS's own words (the pool retried for 30 s and said only «pool timed out»).
        let first = tokio::time::timeout(CONNECT_TIMEOUT, sqlx::ConnectOptions::connect(&options)).await;
        match first {
            Ok(Ok(conn)) => drop(conn),
            Ok(Err(e)) => return Err(StoreError::Invalid(connect_error(&options, root_cert.as_deref(), &e))),
            Err(_) => {
                return Err(StoreError::Invalid(format!(
                    "cannot connect to PostgreSQL at {}: no answer in {} s; is the host right and the port open?",
                    place(&options),
                    CONNECT_TIMEOUT.as_secs()
                )))
            }
        }
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options)
            .await
            .map_err(db("connect"))?;
        MIGRATOR.run(&pool).await.map_err(|source| StoreError::Migrate { backend: BACKEND, source })?;
        Ok(PostgresStore { pool })
    }

    /// Brings the planner's statistics of `records` up to date after a run that changed
    /// `changed` of its rows, when that is more than autovacuum lets pass before it analyses
    /// a table (50 rows and a tenth of the table) or the table was never analysed. A server
    /// may run without autovacuum (the project's test server does) and a first full sync
    /// loads millions of rows at once: without statistics the planner takes every scan of
    /// `records` for a handful of rows and chose nested loops over a district's marks that
    /// ran for a quarter of an hour (the rollout report's statement, 2026-12-06).
    async fn analyze_after(&self, changed: u64) -> StoreResult<()> {
        if changed <= 50 {
            return Ok(());
        }
        // reltuples is -1 until the table is first analysed or vacuumed.
        let rows: Option<f32> = sqlx::query_scalar("SELECT reltuples FROM pg_class WHERE oid = to_regclass('records')")
            .fetch_optional(&self.pool)
            .await
            .map_err(db("finish run: read the table's statistics"))?;
        let stale = match rows {
            Some(rows) if rows >= 0.0 => changed as f64 > 50.0 + 0.1 * f64::from(rows),
            _ => true,
        };
        if stale {
            sqlx::query("ANALYZE records").execute(&self.pool).await.map_err(db("finish run: analyse records"))?;
        }
        Ok(())
    }

    /// Closes the pool (waits for connections in use to be returned).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// How long the first connection may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// `host:port, database «name», user «user»` of connect options.
fn place(options: &PgConnectOptions) -> String {
    format!(
        "{}:{} (database «{}», user «{}»)",
        options.get_host(),
        options.get_port(),
        options.get_database().unwrap_or("(the user's)"),
        options.get_username()
    )
}

/// The CA certificate file the connection checks the server's certificate against:
/// `sslrootcert` of the URL, else `PGSSLROOTCERT` (as sqlx reads them). Inline PEM
/// (`sslrootcert=-----BEGIN…`) is not a file.
fn root_cert_of(url: &str) -> Option<String> {
    let from_url = url::Url::parse(url)
        .ok()
        .and_then(|u| u.query_pairs().find(|(k, _)| k == "sslrootcert").map(|(_, v)| v.into_owned()));
    from_url.or_else(|| std::env::var("PGSSLROOTCERT").ok()).filter(|v| !v.starts_with("-----"))
}

/// A CA file that cannot be read or is not PEM, said before connecting (sqlx said only «No
/// such file or directory», which read as the server being unreachable).
fn check_root_cert(options: &PgConnectOptions, path: &str) -> StoreResult<()> {
    let at = place(options);
    match std::fs::read(path) {
        Err(e) => Err(StoreError::Invalid(format!(
            "PostgreSQL at {at}: the CA certificate sslrootcert={path} cannot be read: {e}; put the PEM file of the CA \
             that signed the server's certificate there, or correct sslrootcert in store.url"
        ))),
        Ok(bytes) if !bytes.windows(27).any(|w| w == b"-----BEGIN CERTIFICATE-----") => {
            Err(StoreError::Invalid(format!(
                "PostgreSQL at {at}: sslrootcert={path} is not a PEM certificate (no «-----BEGIN CERTIFICATE-----» in \
                 it); a DER file converts with `openssl x509 -inform der -in FILE -out FILE.pem`"
            )))
        }
        Ok(_) => Ok(()),
    }
}

/// What to do about a failed TLS handshake, from rustls's words.
fn tls_hint(detail: &str, root_cert: Option<&str>, options: &PgConnectOptions) -> String {
    let ca = match root_cert {
        Some(path) => format!("the CA in sslrootcert={path}"),
        None => "the public CAs ejgate knows (no sslrootcert is given)".into(),
    };
    if detail.contains("UnknownIssuer") || detail.contains("unknown issuer") {
        format!(
            "the server's certificate is not signed by {ca}: give the PEM file of the CA that signed it as \
             sslrootcert=/path/ca.crt in store.url"
        )
    } else if detail.contains("NotValidForName") || detail.contains("not valid for name") {
        format!(
            "the server's certificate does not name the host «{}»: connect by a name the certificate holds, or use \
             sslmode=verify-ca (checks the CA, not the name)",
            options.get_host()
        )
    } else if detail.contains("Expired") || detail.contains("expired") || detail.contains("NotValidYet") {
        "the server's certificate is outside its validity dates: renew it (or check this machine's clock)".into()
    } else if detail.contains("does not support TLS") {
        "the server does not offer TLS: turn ssl on in its postgresql.conf, or correct sslmode in store.url".into()
    } else {
        format!("check sslmode and sslrootcert in store.url (the server's certificate is checked against {ca})")
    }
}

/// A failed first connection as a person can act on it.
fn connect_error(options: &PgConnectOptions, root_cert: Option<&str>, e: &sqlx::Error) -> String {
    let at = place(options);
    match e {
        // A failed TLS handshake reaches sqlx as an I/O error holding rustls's (a certificate
        // from another CA read as «is the server running»).
        sqlx::Error::Io(io) if io.kind() == std::io::ErrorKind::InvalidData && io.get_ref().is_some() => {
            let detail = io.to_string();
            format!("PostgreSQL at {at}: TLS failed: {detail}; {}", tls_hint(&detail, root_cert, options))
        }
        sqlx::Error::Io(io) => format!(
            "cannot connect to PostgreSQL at {at}: {io}; is the server running and listening there (pg_isready -h {} -p {})?",
            options.get_host(),
            options.get_port()
        ),
        sqlx::Error::Database(db) if db.code().as_deref() == Some("3D000") => format!(
            "PostgreSQL at {at}: the database does not exist: create it (createdb -h {} -p {} {}) or correct store.url",
            options.get_host(),
            options.get_port(),
            options.get_database().unwrap_or_default()
        ),
        sqlx::Error::Database(db) if db.code().as_deref() == Some("28P01") || db.code().as_deref() == Some("28000") => {
            format!("PostgreSQL at {at} refused the login: {}; check the user and password in store.url", db.message())
        }
        sqlx::Error::Database(db) => format!("PostgreSQL at {at}: {}", db.message()),
        sqlx::Error::Tls(t) => {
            let detail = t.to_string();
            format!("PostgreSQL at {at}: TLS failed: {detail}; {}", tls_hint(&detail, root_cert, options))
        }
        other => format!("cannot connect to PostgreSQL at {at}: {other}"),
    }
}

fn parse_kind(s: &str) -> StoreResult<EntityKind> {
    EntityKind::parse(s).ok_or_else(|| StoreError::Invalid(format!("unknown kind «{s}» in the store")))
}

// ---- apply --------------------------------------------------------------------------------

/// One statement for all upserts of a batch: `t` decodes the arrays (and parses the JSON
/// once), `logged` writes the change rows in batch order reading `before` from the
/// snapshot, the main statement upserts the records.
const UPSERT_SQL: &str = "\
WITH t AS MATERIALIZED (
    SELECT u.kind, u.id, u.source_id, u.scope, u.natural_key, u.date, u.source_updated_at,
           u.content::jsonb AS content, u.content_hash, u.op, u.ord
    FROM UNNEST($4::text[], $5::uuid[], $6::text[], $7::text[], $8::text[], $9::date[],
                $10::timestamp[], $11::text[], $12::bytea[], $13::text[])
         WITH ORDINALITY AS u(kind, id, source_id, scope, natural_key, date, source_updated_at,
                              content, content_hash, op, ord)
), logged AS (
    INSERT INTO changes (run_id, at, kind, id, source, source_id, op, before, after)
    SELECT $1, $2, t.kind, t.id, $3, t.source_id, t.op,
           CASE WHEN t.op = 'insert' THEN NULL
                ELSE (SELECT r.content FROM records r WHERE r.id = t.id) END,
           t.content
    FROM t ORDER BY t.ord
)
INSERT INTO records (id, kind, source, source_id, scope, natural_key, date, content,
                     content_hash, source_updated_at, first_seen, last_seen, deleted_at)
SELECT t.id, t.kind, $3, t.source_id, t.scope, t.natural_key, t.date, t.content,
       t.content_hash, t.source_updated_at, $2, $2, NULL
FROM t
ON CONFLICT (id) DO UPDATE SET
    kind = excluded.kind, source_id = excluded.source_id, scope = excluded.scope,
    natural_key = excluded.natural_key, date = excluded.date, content = excluded.content, content_hash = excluded.content_hash,
    source_updated_at = excluded.source_updated_at, last_seen = excluded.last_seen,
    deleted_at = NULL";

const UNKNOWN_IDS_SQL: &str = "\
SELECT u.id FROM UNNEST($2::uuid[]) AS u(id)
WHERE NOT EXISTS (SELECT 1 FROM records r WHERE r.id = u.id AND (r.source = $1) IS TRUE)";

/// Delete rows (in batch order) and tombstones for the live records among the ids.
const DELETE_SQL: &str = "\
WITH d AS MATERIALIZED (
    SELECT r.id, r.kind, r.source_id, r.content, u.ord
    FROM UNNEST($4::uuid[]) WITH ORDINALITY AS u(id, ord)
    JOIN records r ON r.id = u.id
    WHERE (r.source = $3) IS TRUE AND r.deleted_at IS NULL
), logged AS (
    INSERT INTO changes (run_id, at, kind, id, source, source_id, op, before, after)
    SELECT $1, $2, d.kind, d.id, $3, d.source_id, 'delete', d.content, NULL
    FROM d ORDER BY d.ord
)
UPDATE records r SET deleted_at = $2 FROM d WHERE r.id = d.id";

const SEEN_SQL: &str = "UPDATE records SET last_seen = $1 WHERE id = ANY($3::uuid[]) AND (source = $2) IS TRUE";

const CURSOR_SQL: &str = "\
INSERT INTO cursors (source, stream, scope, value, updated_at) VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (source, stream, scope)
DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at";

const EXISTING_SQL: &str = "\
SELECT r.id, r.kind, r.natural_key, r.content_hash, r.deleted_at IS NOT NULL FROM records r
WHERE r.id = ANY($2::uuid[]) AND (r.source = $1) IS TRUE
UNION ALL
SELECT r.id, r.kind, r.natural_key, r.content_hash, r.deleted_at IS NOT NULL
FROM UNNEST($3::text[], $4::text[]) AS c(kind, scope)
JOIN records r ON r.source = $1 AND r.kind = c.kind AND r.scope = c.scope
UNION ALL
SELECT r.id, r.kind, r.natural_key, r.content_hash, r.deleted_at IS NOT NULL
FROM UNNEST($5::text[], $6::text[], $7::date[], $8::date[]) AS c(kind, scope, dfrom, dto)
JOIN records r ON r.source = $1 AND r.kind = c.kind AND r.scope = c.scope
                AND r.date BETWEEN c.dfrom AND c.dto";

const CHANGE_COLUMNS: &str = "seq, run_id, at, kind, id, source, source_id, op, before, after";

async fn write_upserts(
    conn: &mut PgConnection,
    run: RunId,
    source: &str,
    at: DateTime<Utc>,
    upserts: &[Upsert],
) -> StoreResult<()> {
    let n = upserts.len();
    let mut kinds = Vec::with_capacity(n);
    let mut ids = Vec::with_capacity(n);
    let mut source_ids = Vec::with_capacity(n);
    let mut scopes = Vec::with_capacity(n);
    let mut keys = Vec::with_capacity(n);
    let mut dates: Vec<Option<NaiveDate>> = Vec::with_capacity(n);
    let mut updated: Vec<Option<NaiveDateTime>> = Vec::with_capacity(n);
    let mut contents = Vec::with_capacity(n);
    let mut hashes = Vec::with_capacity(n);
    let mut ops = Vec::with_capacity(n);
    for u in upserts {
        kinds.push(u.kind.as_str());
        ids.push(u.id);
        source_ids.push(u.source_id.as_str());
        scopes.push(u.scope.as_str());
        keys.push(u.natural_key.as_str());
        dates.push(u.date);
        updated.push(u.source_updated_at);
        // check_change_set made sure it is UTF-8.
        contents.push(std::str::from_utf8(&u.content).unwrap_or_default());
        hashes.push(&u.content_hash[..]);
        ops.push(u.op.as_str());
    }
    sqlx::query(UPSERT_SQL)
        .bind(run)
        .bind(at)
        .bind(source)
        .bind(kinds)
        .bind(ids)
        .bind(source_ids)
        .bind(scopes)
        .bind(keys)
        .bind(dates)
        .bind(updated)
        .bind(contents)
        .bind(hashes)
        .bind(ops)
        .execute(&mut *conn)
        .await
        .map_err(db("apply: upsert records and write their change rows"))?;
    Ok(())
}

async fn write_deletes(
    conn: &mut PgConnection,
    run: RunId,
    source: &str,
    at: DateTime<Utc>,
    deletes: &[(Uuid, EntityKind)],
) -> StoreResult<()> {
    let ids: Vec<Uuid> = deletes.iter().map(|(id, _)| *id).collect();
    let unknown: Vec<Uuid> = sqlx::query_scalar(UNKNOWN_IDS_SQL)
        .bind(source)
        .bind(&ids)
        .fetch_all(&mut *conn)
        .await
        .map_err(db("apply: check deleted records"))?;
    if let Some(first) = unknown.first() {
        return Err(StoreError::Invalid(format!(
            "delete of {} record(s) that source «{source}» does not have in the store \
             (first: {first}); nothing of the batch was written",
            unknown.len()
        )));
    }
    sqlx::query(DELETE_SQL)
        .bind(run)
        .bind(at)
        .bind(source)
        .bind(&ids)
        .execute(&mut *conn)
        .await
        .map_err(db("apply: write tombstones and their change rows"))?;
    Ok(())
}

// ---- row decoding ----------------------------------------------------------------------

fn change_row(row: &PgRow) -> StoreResult<ChangeRow> {
    let get = db("read change rows");
    let op: &str = row.try_get(7).map_err(get)?;
    Ok(ChangeRow {
        seq: row.try_get(0).map_err(get)?,
        run_id: row.try_get(1).map_err(get)?,
        at: row.try_get(2).map_err(get)?,
        kind: parse_kind(row.try_get(3).map_err(get)?)?,
        id: row.try_get(4).map_err(get)?,
        source: row.try_get(5).map_err(get)?,
        source_id: row.try_get(6).map_err(get)?,
        op: ChangeOp::parse(op).ok_or_else(|| StoreError::Invalid(format!("unknown change op «{op}» in the store")))?,
        before: row.try_get(8).map_err(get)?,
        after: row.try_get(9).map_err(get)?,
    })
}

const LEASE_COLUMNS: &str = "name, token, host, pid, acquired_at, renewed_at, expires_at";

fn lease_row(row: &PgRow) -> StoreResult<LeaseInfo> {
    let get = db("read leases");
    let pid: i64 = row.try_get(3).map_err(get)?;
    Ok(LeaseInfo {
        name: row.try_get(0).map_err(get)?,
        token: row.try_get(1).map_err(get)?,
        host: row.try_get(2).map_err(get)?,
        pid: u32::try_from(pid).unwrap_or(0),
        acquired_at: row.try_get(4).map_err(get)?,
        renewed_at: row.try_get(5).map_err(get)?,
        expires_at: row.try_get(6).map_err(get)?,
    })
}

fn sync_run(row: &PgRow) -> StoreResult<SyncRun> {
    let get = db("read runs");
    let status: &str = row.try_get(5).map_err(get)?;
    let stats: serde_json::Value = row.try_get(7).map_err(get)?;
    Ok(SyncRun {
        id: row.try_get(0).map_err(get)?,
        source: row.try_get(1).map_err(get)?,
        mode: row.try_get(2).map_err(get)?,
        started_at: row.try_get(3).map_err(get)?,
        finished_at: row.try_get(4).map_err(get)?,
        status: RunStatus::parse(status)
            .ok_or_else(|| StoreError::Invalid(format!("unknown run status «{status}» in the store")))?,
        error: row.try_get(6).map_err(get)?,
        error_kind: match row.try_get::<Option<&str>, _>(8).map_err(get)? {
            None => None,
            Some(kind) => Some(
                RunErrorKind::parse(kind)
                    .ok_or_else(|| StoreError::Invalid(format!("unknown error kind «{kind}» in the store")))?,
            ),
        },
        stats: serde_json::from_value(stats)
            .map_err(|e| StoreError::Invalid(format!("bad run statistics in the store: {e}")))?,
    })
}

/// The store's tables in the connection's schema, by name; the migrations' bookkeeping
/// (`_sqlx_migrations`) left out. Shared by the inspection and the backup export.
async fn tables_of_schema(conn: &mut PgConnection, operation: &'static str) -> StoreResult<Vec<String>> {
    sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables WHERE table_schema = current_schema() \
         AND table_type = 'BASE TABLE' AND table_name NOT LIKE '\\_sqlx%' ORDER BY 1",
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(db(operation))
}

/// Rows per table, the schema version and the consistency checks, read in the caller's
/// transaction (one snapshot).
async fn inspect_in(conn: &mut PgConnection) -> StoreResult<Inspection> {
    let names = tables_of_schema(conn, "inspect: list the tables").await?;
    let mut tables = std::collections::BTreeMap::new();
    for name in names {
        let sql = format!("SELECT count(*) FROM \"{}\"", name.replace('"', "\"\""));
        let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .fetch_one(&mut *conn)
            .await
            .map_err(db("inspect: count rows"))?;
        tables.insert(name, n as u64);
    }
    let schema_version: i64 =
        sqlx::query_scalar("SELECT coalesce(max(version), 0) FROM _sqlx_migrations WHERE success")
            .fetch_one(&mut *conn)
            .await
            .map_err(db("inspect: read the schema version"))?;
    let mut problems = Vec::new();
    for sql in super::CONSISTENCY_CHECKS {
        let found: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .fetch_all(&mut *conn)
            .await
            .map_err(db("inspect: consistency check"))?;
        problems.extend(found);
    }
    Ok(Inspection { tables, schema_version, problems })
}

// ---- the trait ----------------------------------------------------------------------------

#[async_trait]
impl Store for PostgresStore {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    fn shared(&self) -> std::sync::Arc<dyn Store> {
        std::sync::Arc::new(self.clone())
    }

    async fn acquire_lease(&self, request: &LeaseRequest<'_>) -> StoreResult<LeaseOutcome> {
        // Times are the server's (`now()`), so that workers on several hosts agree on
        // expiry. A lease row locked FOR UPDATE is decided on by one transaction at a time;
        // two first inserts at once meet at the primary key, and the one that loses tries
        // again and finds the other's row.
        for _ in 0..5 {
            let mut tx = self.pool.begin().await.map_err(db("begin transaction"))?;
            let now: DateTime<Utc> =
                sqlx::query_scalar("SELECT now()").fetch_one(&mut *tx).await.map_err(db("acquire lease: clock"))?;
            let current = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {LEASE_COLUMNS} FROM leases WHERE name = $1 FOR UPDATE"
            )))
            .bind(request.name)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db("acquire lease: read it"))?
            .as_ref()
            .map(lease_row)
            .transpose()?;
            if let Some(held) = &current {
                if held.expires_at > now && request.replace != Some(held.token) {
                    return Ok(LeaseOutcome::Held(held.clone()));
                }
            }
            let expires_at = now
                .checked_add_signed(chrono::TimeDelta::milliseconds(ttl_millis(request.ttl)))
                .unwrap_or(DateTime::<Utc>::MAX_UTC);
            let lease = LeaseInfo {
                name: request.name.to_string(),
                token: Uuid::new_v4(),
                host: request.host.to_string(),
                pid: request.pid,
                acquired_at: now,
                renewed_at: now,
                expires_at,
            };
            let sql = if current.is_some() {
                "UPDATE leases SET token = $2, host = $3, pid = $4, acquired_at = $5, renewed_at = $5, \
                 expires_at = $6 WHERE name = $1"
            } else {
                "INSERT INTO leases (name, token, host, pid, acquired_at, renewed_at, expires_at) \
                 VALUES ($1, $2, $3, $4, $5, $5, $6) ON CONFLICT (name) DO NOTHING"
            };
            let done = sqlx::query(sql)
                .bind(&lease.name)
                .bind(lease.token)
                .bind(&lease.host)
                .bind(i64::from(lease.pid))
                .bind(now)
                .bind(expires_at)
                .execute(&mut *tx)
                .await
                .map_err(db("acquire lease"))?;
            if done.rows_affected() == 1 {
                if let Some(old) = &current {
                    sqlx::query(
                        "INSERT INTO lease_takeovers (name, at, old_host, old_pid, old_renewed_at, new_host, new_pid) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    )
                    .bind(&lease.name)
                    .bind(now)
                    .bind(&old.host)
                    .bind(i64::from(old.pid))
                    .bind(old.renewed_at)
                    .bind(&lease.host)
                    .bind(i64::from(lease.pid))
                    .execute(&mut *tx)
                    .await
                    .map_err(db("acquire lease: record the takeover"))?;
                }
                tx.commit().await.map_err(db("acquire lease: commit"))?;
                return Ok(LeaseOutcome::Acquired { lease, took_over: current });
            }
        }
        Err(StoreError::Invalid(format!("could not take or read the lease «{}» in five tries", request.name)))
    }

    async fn renew_lease(&self, name: &str, token: Uuid, ttl: Duration) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE leases SET renewed_at = now(), expires_at = now() + $1::float8 * interval '1 millisecond' \
             WHERE name = $2 AND token = $3",
        )
        .bind(ttl_millis(ttl))
        .bind(name)
        .bind(token)
        .execute(&self.pool)
        .await
        .map_err(db("renew lease"))?;
        Ok(done.rows_affected() == 1)
    }

    async fn release_lease(&self, name: &str, token: Uuid) -> StoreResult<()> {
        sqlx::query("DELETE FROM leases WHERE name = $1 AND token = $2")
            .bind(name)
            .bind(token)
            .execute(&self.pool)
            .await
            .map_err(db("release lease"))?;
        Ok(())
    }

    async fn inspect(&self) -> StoreResult<Inspection> {
        // One snapshot for every count and check.
        let mut tx = self.pool.begin().await.map_err(db("inspect: begin"))?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await
            .map_err(db("inspect: repeatable read"))?;
        inspect_in(&mut tx).await
    }

    async fn snapshot_into(&self, path: &std::path::Path) -> StoreResult<Inspection> {
        self.export_into(path).await
    }

    async fn log_backup_use(&self, entry: &BackupUse) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO backup_log (at, action, backup_id, who, why, outcome, detail) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(entry.at)
        .bind(entry.action.as_str())
        .bind(&entry.backup_id)
        .bind(&entry.who)
        .bind(&entry.why)
        .bind(entry.outcome.as_str())
        .bind(&entry.detail)
        .execute(&self.pool)
        .await
        .map_err(db("write the backup-usage log"))?;
        Ok(())
    }

    async fn add_paper_copy(&self, copy: &PaperCopy) -> StoreResult<u32> {
        // The school's next number: two writers at once serialise on the school's advisory
        // lock (the primary key would refuse the second otherwise).
        let mut tx = self.pool.begin().await.map_err(db("enter a paper copy in the register: begin"))?;
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext('paper_register:' || $1))")
            .bind(&copy.school)
            .execute(&mut *tx)
            .await
            .map_err(db("enter a paper copy in the register: lock"))?;
        let (number,): (i32,) = sqlx::query_as(
            "INSERT INTO paper_register (school, number, class, school_year, title, sheets, signed_by, kept_at, \
             handed_on, handed_to, recorded_at, recorded_by) \
             SELECT $1, COALESCE(MAX(number), 0) + 1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11 \
             FROM paper_register WHERE school = $1 RETURNING number",
        )
        .bind(&copy.school)
        .bind(&copy.class)
        .bind(&copy.school_year)
        .bind(&copy.title)
        .bind(copy.sheets as i32)
        .bind(&copy.signed_by)
        .bind(&copy.kept_at)
        .bind(copy.handed_on)
        .bind(&copy.handed_to)
        .bind(copy.recorded_at)
        .bind(&copy.recorded_by)
        .fetch_one(&mut *tx)
        .await
        .map_err(db("enter a paper copy in the register"))?;
        tx.commit().await.map_err(db("enter a paper copy in the register: commit"))?;
        Ok(number as u32)
    }

    async fn set_paper_copy(&self, school: &str, number: u32, change: &PaperCopyChange) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE paper_register SET sheets = COALESCE($3, sheets), signed_by = COALESCE($4, signed_by), \
             kept_at = COALESCE($5, kept_at), handed_on = COALESCE($6, handed_on), \
             handed_to = COALESCE($7, handed_to) WHERE school = $1 AND number = $2",
        )
        .bind(school)
        .bind(number as i32)
        .bind(change.sheets.map(|n| n as i32))
        .bind(&change.signed_by)
        .bind(&change.kept_at)
        .bind(change.handed_on)
        .bind(&change.handed_to)
        .execute(&self.pool)
        .await
        .map_err(db("change the register of paper copies"))?;
        Ok(done.rows_affected() == 1)
    }

    async fn paper_copies(&self, school: Option<&str>) -> StoreResult<Vec<PaperCopy>> {
        #[allow(clippy::type_complexity)]
        let rows: Vec<(
            String,
            i32,
            String,
            String,
            String,
            i32,
            Option<String>,
            Option<String>,
            Option<chrono::NaiveDate>,
            Option<String>,
            DateTime<Utc>,
            String,
        )> = sqlx::query_as(
            "SELECT school, number, class, school_year, title, sheets, signed_by, kept_at, handed_on, handed_to, \
             recorded_at, recorded_by FROM paper_register WHERE $1::text IS NULL OR school = $1 \
             ORDER BY school, number",
        )
        .bind(school)
        .fetch_all(&self.pool)
        .await
        .map_err(db("read the register of paper copies"))?;
        Ok(rows
            .into_iter()
            .map(|r| PaperCopy {
                school: r.0,
                number: r.1 as u32,
                class: r.2,
                school_year: r.3,
                title: r.4,
                sheets: r.5 as u32,
                signed_by: r.6,
                kept_at: r.7,
                handed_on: r.8,
                handed_to: r.9,
                recorded_at: r.10,
                recorded_by: r.11,
            })
            .collect())
    }

    async fn backup_uses(&self, limit: u32) -> StoreResult<Vec<BackupUse>> {
        #[allow(clippy::type_complexity)]
        let rows: Vec<(DateTime<Utc>, String, Option<String>, String, Option<String>, String, String)> =
            sqlx::query_as(
                "SELECT at, action, backup_id, who, why, outcome, detail FROM backup_log ORDER BY id DESC LIMIT $1",
            )
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(db("read the backup-usage log"))?;
        rows.into_iter()
            .map(|(at, action, backup_id, who, why, outcome, detail)| {
                Ok(BackupUse {
                    at,
                    action: BackupAction::parse(&action)
                        .ok_or_else(|| StoreError::Invalid(format!("unknown backup action «{action}» in the store")))?,
                    backup_id,
                    who,
                    why,
                    outcome: BackupOutcome::from_store(&outcome)?,
                    detail,
                })
            })
            .collect()
    }

    async fn record_backup_targets(
        &self,
        at: DateTime<Utc>,
        backup_id: &str,
        targets: &[(String, Option<String>)],
    ) -> StoreResult<()> {
        let mut tx = self.pool.begin().await.map_err(db("record the backup targets: begin"))?;
        for (target, error) in targets {
            sqlx::query(
                "INSERT INTO backup_targets (target, last_attempt_at, last_success_at, last_error, last_backup_id) \
                 VALUES ($1, $2, CASE WHEN $3::text IS NULL THEN $2 END, $3, $4) ON CONFLICT (target) DO UPDATE SET \
                 last_attempt_at = excluded.last_attempt_at, \
                 last_success_at = coalesce(excluded.last_success_at, backup_targets.last_success_at), \
                 last_error = excluded.last_error, last_backup_id = excluded.last_backup_id",
            )
            .bind(target)
            .bind(at)
            .bind(error)
            .bind(backup_id)
            .execute(&mut *tx)
            .await
            .map_err(db("record the backup targets"))?;
        }
        tx.commit().await.map_err(db("record the backup targets: commit"))
    }

    async fn backup_targets(&self) -> StoreResult<Vec<BackupTargetState>> {
        let rows: Vec<(String, DateTime<Utc>, Option<DateTime<Utc>>, Option<String>, String)> = sqlx::query_as(
            "SELECT target, last_attempt_at, last_success_at, last_error, last_backup_id FROM backup_targets \
             ORDER BY target COLLATE \"C\"",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(db("read the backup targets"))?;
        Ok(rows
            .into_iter()
            .map(|(target, last_attempt_at, last_success_at, last_error, last_backup_id)| BackupTargetState {
                target,
                last_attempt_at,
                last_success_at,
                last_error,
                last_backup_id,
            })
            .collect())
    }

    async fn backup_run_totals(&self) -> StoreResult<Vec<(BackupOutcome, u64)>> {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT outcome, count(*) FROM backup_log WHERE action = 'backup' GROUP BY outcome ORDER BY outcome",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(db("count the backup runs"))?;
        rows.into_iter().map(|(o, n)| BackupOutcome::from_store(&o).map(|outcome| (outcome, n as u64))).collect()
    }

    async fn leases(&self) -> StoreResult<Vec<LeaseInfo>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {LEASE_COLUMNS} FROM leases ORDER BY name")))
            .fetch_all(&self.pool)
            .await
            .map_err(db("read leases"))?;
        rows.iter().map(lease_row).collect()
    }

    async fn begin_run(&self, source: &str, mode: &str) -> StoreResult<RunId> {
        let now = now_micros();
        let mut tx = self.pool.begin().await.map_err(db("begin transaction"))?;
        sqlx::query(
            "UPDATE sync_runs SET status = 'interrupted', finished_at = $1, \
             error = coalesce(error, 'the process running it stopped before it finished') \
             WHERE source = $2 AND status = 'running'",
        )
        .bind(now)
        .bind(source)
        .execute(&mut *tx)
        .await
        .map_err(db("begin run: close interrupted runs"))?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO sync_runs (source, mode, started_at, status, stats) \
             VALUES ($1, $2, $3, 'running', $4) RETURNING id",
        )
        .bind(source)
        .bind(mode)
        .bind(now)
        .bind(Json(RunStats::default()))
        .fetch_one(&mut *tx)
        .await
        .map_err(db("begin run"))?;
        tx.commit().await.map_err(db("begin run: commit"))?;
        Ok(id)
    }

    async fn finish_run(
        &self,
        run: RunId,
        status: RunStatus,
        error: Option<&RunError>,
        stats: &RunStats,
    ) -> StoreResult<()> {
        let done = sqlx::query(
            "UPDATE sync_runs SET status = $1, finished_at = $2, error = $3, stats = $4, \
             error_kind = $6 WHERE id = $5",
        )
        .bind(status.as_str())
        .bind(now_micros())
        .bind(error.map(|e| e.message.as_str()))
        .bind(Json(stats))
        .bind(run)
        .bind(error.map(|e| e.kind.as_str()))
        .execute(&self.pool)
        .await
        .map_err(db("finish run"))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Invalid(format!("finish run: there is no run {run}")));
        }
        self.analyze_after(stats.inserted + stats.updated + stats.deleted).await
    }

    async fn runs(&self, limit: u32) -> StoreResult<Vec<SyncRun>> {
        let rows = sqlx::query(
            "SELECT id, source, mode, started_at, finished_at, status, error, stats, error_kind \
             FROM sync_runs ORDER BY id DESC LIMIT $1",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(db("list runs"))?;
        rows.iter().map(sync_run).collect()
    }

    async fn cursors(&self, source: &str) -> StoreResult<HashMap<(String, String), String>> {
        let rows: Vec<(String, String, String)> =
            sqlx::query_as("SELECT stream, scope, value FROM cursors WHERE source = $1")
                .bind(source)
                .fetch_all(&self.pool)
                .await
                .map_err(db("read cursors"))?;
        Ok(rows.into_iter().map(|(stream, scope, value)| ((stream, scope), value)).collect())
    }

    async fn existing(
        &self,
        source: &str,
        ids: &[Uuid],
        coverages: &[(Vec<EntityKind>, String, Option<DateRange>)],
    ) -> StoreResult<HashMap<Uuid, Existing>> {
        let (mut open_kinds, mut open_scopes) = (Vec::new(), Vec::new());
        let (mut kinds, mut scopes, mut froms, mut tos) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (cov_kinds, scope, range) in coverages {
            for kind in cov_kinds {
                match range {
                    None => {
                        open_kinds.push(kind.as_str());
                        open_scopes.push(scope.as_str());
                    }
                    Some(r) => {
                        kinds.push(kind.as_str());
                        scopes.push(scope.as_str());
                        froms.push(r.from);
                        tos.push(r.to);
                    }
                }
            }
        }
        let rows: Vec<(Uuid, String, String, Vec<u8>, bool)> = sqlx::query_as(EXISTING_SQL)
            .bind(source)
            .bind(ids)
            .bind(open_kinds)
            .bind(open_scopes)
            .bind(kinds)
            .bind(scopes)
            .bind(froms)
            .bind(tos)
            .fetch_all(&self.pool)
            .await
            .map_err(db("read existing records"))?;
        let mut out = HashMap::with_capacity(rows.len());
        for (id, kind, natural_key, hash, deleted) in rows {
            let content_hash: [u8; 32] = hash
                .as_slice()
                .try_into()
                .map_err(|_| StoreError::Invalid(format!("content hash of {id} is not 32 bytes")))?;
            out.insert(id, Existing { kind: parse_kind(&kind)?, natural_key, content_hash, deleted });
        }
        Ok(out)
    }

    async fn holds_source(&self, source: &str) -> StoreResult<bool> {
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM records WHERE source = $1)")
            .bind(source)
            .fetch_one(&self.pool)
            .await
            .map_err(db("look for records of the source"))
    }

    async fn apply(&self, run: RunId, source: &str, changes: &ChangeSet, cursors: &[CursorUpdate]) -> StoreResult<()> {
        check_change_set(changes)?;
        let at = now_micros();
        let mut tx = self.pool.begin().await.map_err(db("begin transaction"))?;

        if changes.change_count() > 0 {
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(CHANGE_LOG_LOCK)
                .execute(&mut *tx)
                .await
                .map_err(db("apply: lock the change log"))?;
        }
        if !changes.upserts.is_empty() {
            write_upserts(&mut tx, run, source, at, &changes.upserts).await?;
        }
        if !changes.deletes.is_empty() {
            write_deletes(&mut tx, run, source, at, &changes.deletes).await?;
        }
        if !changes.seen.is_empty() {
            sqlx::query(SEEN_SQL)
                .bind(at)
                .bind(source)
                .bind(&changes.seen)
                .execute(&mut *tx)
                .await
                .map_err(db("apply: mark records seen"))?;
        }
        for c in cursors {
            sqlx::query(CURSOR_SQL)
                .bind(source)
                .bind(&c.stream)
                .bind(&c.scope)
                .bind(&c.value)
                .bind(at)
                .execute(&mut *tx)
                .await
                .map_err(db("apply: store the cursor"))?;
        }
        // Dropping `tx` on any error above rolls the whole batch back.
        tx.commit().await.map_err(db("apply: commit"))
    }

    async fn counts(&self, source: Option<&str>) -> StoreResult<Vec<KindCount>> {
        let rows: Vec<(String, i64, i64)> = sqlx::query_as(
            "SELECT kind, count(*) FILTER (WHERE deleted_at IS NULL), \
             count(*) FILTER (WHERE deleted_at IS NOT NULL) FROM records \
             WHERE $1::text IS NULL OR source = $1 GROUP BY kind",
        )
        .bind(source)
        .fetch_all(&self.pool)
        .await
        .map_err(db("count records"))?;
        let mut out = rows
            .into_iter()
            .map(|(kind, live, tombstones)| {
                Ok(KindCount {
                    kind: parse_kind(&kind)?,
                    live: live.max(0) as u64,
                    tombstones: tombstones.max(0) as u64,
                })
            })
            .collect::<StoreResult<Vec<_>>>()?;
        out.sort_by_key(|c| c.kind);
        Ok(out)
    }

    async fn changes_since(&self, after_seq: i64, limit: u32) -> StoreResult<Vec<ChangeRow>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {CHANGE_COLUMNS} FROM changes WHERE seq > $1 ORDER BY seq LIMIT $2"
        )))
        .bind(after_seq)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(db("read change rows"))?;
        rows.iter().map(change_row).collect()
    }

    async fn changes_of_run(&self, run: RunId) -> StoreResult<Vec<ChangeRow>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {CHANGE_COLUMNS} FROM changes WHERE run_id = $1 ORDER BY seq"
        )))
        .bind(run)
        .fetch_all(&self.pool)
        .await
        .map_err(db("read change rows of a run"))?;
        rows.iter().map(change_row).collect()
    }

    async fn edits(&self, source: &str, kind: EntityKind) -> StoreResult<Vec<ChangeRow>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {CHANGE_COLUMNS} FROM changes WHERE source = $1 AND kind = $2 AND op <> 'insert' ORDER BY seq"
        )))
        .bind(source)
        .bind(kind.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(db("read the edits of a source"))?;
        rows.iter().map(change_row).collect()
    }

    async fn journal_aggregates(&self, requests: &[AggregateRequest]) -> StoreResult<Vec<SchoolAggregates>> {
        if requests.is_empty() {
            return Ok(Vec::new());
        }
        let p = aggregates::params(requests)?;
        // The plan's settings, for this transaction only (measured on a 20-school district,
        // 5.5 million records, 2 cores; benches/rollout_report.rs, 2026-12-06):
        // - every join of the statement is over thousands of rows or more: hash joins.
        //   Without statistics (a store just loaded or restored, before an ANALYZE) the
        //   planner takes each scan for one row and chose nested loops of marks × lessons,
        //   which ran for more than a quarter of an hour;
        // - no JIT: compiling the statement's expressions took 4.1 of its 13.2 s, more than
        //   any part of it, and a report is run once;
        // - 64 MB per sort and hash instead of the server's default 4 MB: the hash of the
        //   quarters' lessons that the marks are joined to (100 MB over three processes)
        //   spilled into 16 batches, 2.3 GB of temporary files. With both, 5.8 s; a larger
        //   work_mem gained nothing (160 MB: 6.3 s).
        let mut tx = self.pool.begin().await.map_err(db("count the journal: begin"))?;
        sqlx::query(
            "SELECT set_config('enable_nestloop', 'off', true), set_config('jit', 'off', true), \
             set_config('work_mem', '64MB', true)",
        )
        .execute(&mut *tx)
        .await
        .map_err(db("count the journal: plan settings"))?;
        let rows: Vec<aggregates::Row> = sqlx::query_as(JOURNAL_AGGREGATES)
            .bind(p.schools)
            .bind(p.spans)
            .bind(p.sources)
            .bind(aggregates::BLANK)
            .bind(&p.journals)
            .fetch_all(&mut *tx)
            .await
            .map_err(db("count the journal"))?;
        tx.commit().await.map_err(db("count the journal: end"))?;
        aggregates::assemble(requests, rows)
    }

    async fn first_seen(&self, kind: EntityKind, source: &str) -> StoreResult<HashMap<Uuid, DateTime<Utc>>> {
        let rows: Vec<(Uuid, DateTime<Utc>)> =
            sqlx::query_as("SELECT id, first_seen FROM records WHERE kind = $1 AND source = $2 AND deleted_at IS NULL")
                .bind(kind.as_str())
                .bind(source)
                .fetch_all(&self.pool)
                .await
                .map_err(db("read when records were first seen"))?;
        Ok(rows.into_iter().collect())
    }

    async fn findings(&self, school: &str) -> StoreResult<Vec<StoredFinding>> {
        let rows = sqlx::query("SELECT key, rule, clause, severity, teacher, class, subject, date, lesson, mark, what, evidence, first_detected, last_detected, fixed_at FROM findings WHERE school = $1 ORDER BY key COLLATE \"C\"")
            .bind(school)
            .fetch_all(&self.pool)
            .await
            .map_err(db("read findings"))?;
        rows.iter()
            .map(|row| {
                let get = db("read findings");
                Ok(StoredFinding {
                    key: row.try_get(0).map_err(get)?,
                    rule: row.try_get(1).map_err(get)?,
                    clause: row.try_get(2).map_err(get)?,
                    severity: row.try_get(3).map_err(get)?,
                    teacher: row.try_get(4).map_err(get)?,
                    class: row.try_get(5).map_err(get)?,
                    subject: row.try_get(6).map_err(get)?,
                    date: row.try_get(7).map_err(get)?,
                    lesson: row.try_get(8).map_err(get)?,
                    mark: row.try_get(9).map_err(get)?,
                    what: row.try_get(10).map_err(get)?,
                    evidence: row.try_get(11).map_err(get)?,
                    first_detected: row.try_get(12).map_err(get)?,
                    last_detected: row.try_get(13).map_err(get)?,
                    fixed_at: row.try_get(14).map_err(get)?,
                })
            })
            .collect()
    }

    async fn report_compromised(
        &self,
        school: &str,
        login: &str,
        at: DateTime<Utc>,
        reported_at: DateTime<Utc>,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO compromised_logins (school, login, at, reported_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (school, login, at) DO NOTHING",
        )
        .bind(school)
        .bind(login)
        .bind(at)
        .bind(reported_at)
        .execute(&self.pool)
        .await
        .map_err(db("record a compromised login"))?;
        Ok(())
    }

    async fn compromised(&self, school: &str) -> StoreResult<Vec<CompromisedLogin>> {
        let rows: Vec<(String, DateTime<Utc>, DateTime<Utc>)> = sqlx::query_as(
            "SELECT login, at, reported_at FROM compromised_logins WHERE school = $1 ORDER BY at, login",
        )
        .bind(school)
        .fetch_all(&self.pool)
        .await
        .map_err(db("read compromised logins"))?;
        Ok(rows.into_iter().map(|(login, at, reported_at)| CompromisedLogin { login, at, reported_at }).collect())
    }

    async fn write_findings(
        &self,
        school: &str,
        upserts: &[StoredFinding],
        fixed: &[(String, DateTime<Utc>)],
    ) -> StoreResult<()> {
        if upserts.is_empty() && fixed.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await.map_err(db("begin transaction"))?;
        for f in upserts {
            sqlx::query(
                "INSERT INTO findings (school, key, rule, clause, severity, teacher, class, subject, date, \
                 lesson, mark, what, evidence, first_detected, last_detected, fixed_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) \
                 ON CONFLICT (school, key) DO UPDATE SET rule = excluded.rule, clause = excluded.clause, \
                 severity = excluded.severity, teacher = excluded.teacher, class = excluded.class, \
                 subject = excluded.subject, date = excluded.date, lesson = excluded.lesson, mark = excluded.mark, \
                 what = excluded.what, evidence = excluded.evidence, first_detected = excluded.first_detected, \
                 last_detected = excluded.last_detected, fixed_at = excluded.fixed_at",
            )
            .bind(school)
            .bind(&f.key)
            .bind(&f.rule)
            .bind(&f.clause)
            .bind(&f.severity)
            .bind(&f.teacher)
            .bind(&f.class)
            .bind(&f.subject)
            .bind(f.date)
            .bind(f.lesson)
            .bind(f.mark)
            .bind(&f.what)
            .bind(&f.evidence)
            .bind(f.first_detected)
            .bind(f.last_detected)
            .bind(f.fixed_at)
            .execute(&mut *tx)
            .await
            .map_err(db("write a finding"))?;
        }
        for (key, at) in fixed {
            sqlx::query("UPDATE findings SET fixed_at = $3 WHERE school = $1 AND key = $2 AND fixed_at IS NULL")
                .bind(school)
                .bind(key)
                .bind(*at)
                .execute(&mut *tx)
                .await
                .map_err(db("mark a finding fixed"))?;
        }
        tx.commit().await.map_err(db("commit findings"))?;
        Ok(())
    }

    async fn records(
        &self,
        kind: EntityKind,
        source: Option<&str>,
        include_deleted: bool,
    ) -> StoreResult<Vec<StoredRecord>> {
        let rows = sqlx::query(
            "SELECT id, kind, source, source_id, scope, date, content, deleted_at IS NOT NULL \
             FROM records WHERE kind = $1 AND ($2::text IS NULL OR source = $2) \
             AND ($3 OR deleted_at IS NULL) \
             ORDER BY source_id COLLATE \"C\", source COLLATE \"C\"",
        )
        .bind(kind.as_str())
        .bind(source)
        .bind(include_deleted)
        .fetch_all(&self.pool)
        .await
        .map_err(db("read records"))?;
        rows.iter()
            .map(|row| {
                let get = db("read records");
                Ok(StoredRecord {
                    id: row.try_get(0).map_err(get)?,
                    kind: parse_kind(row.try_get(1).map_err(get)?)?,
                    source: row.try_get(2).map_err(get)?,
                    source_id: row.try_get(3).map_err(get)?,
                    scope: row.try_get(4).map_err(get)?,
                    date: row.try_get(5).map_err(get)?,
                    content: row.try_get(6).map_err(get)?,
                    deleted: row.try_get(7).map_err(get)?,
                })
            })
            .collect()
    }

    async fn visit_records(
        &self,
        kind: EntityKind,
        source: &str,
        first_seen: bool,
        visit: RecordVisitor<'_>,
    ) -> StoreResult<()> {
        use futures::TryStreamExt;
        // The rows stream in as the server sends them (no Vec of a year of marks); the
        // content comes as the JSONB value's text, which the reader parses once.
        let mut rows = sqlx::query(
            "SELECT id, source_id, content::text, CASE WHEN $3 THEN first_seen END FROM records \
             WHERE source = $1 AND kind = $2 AND deleted_at IS NULL",
        )
        .bind(source)
        .bind(kind.as_str())
        .bind(first_seen)
        .fetch(&self.pool);
        while let Some(row) = rows.try_next().await.map_err(db("visit records"))? {
            let get = db("visit records");
            let row = ContentRow {
                id: row.try_get(0).map_err(get)?,
                source_id: row.try_get(1).map_err(get)?,
                content: row.try_get(2).map_err(get)?,
                first_seen: row.try_get(3).map_err(get)?,
            };
            if visit(row).is_break() {
                break;
            }
        }
        Ok(())
    }

    async fn each_raw_record(
        &self,
        kind: EntityKind,
        source: &str,
        dated_within: Option<(NaiveDate, NaiveDate)>,
        each: RawRecordVisitor<'_>,
    ) -> StoreResult<u64> {
        use futures::TryStreamExt;
        // The JSONB as its text (PostgreSQL's spacing and key order), not decoded into a
        // serde_json::Value; rows fetched as the server sends them, one at a time.
        let mut rows = sqlx::query(
            "SELECT id, source, source_id, scope, date, content::text FROM records \
             WHERE kind = $1 AND source = $2 AND deleted_at IS NULL \
             AND ($3::date IS NULL OR date IS NULL OR date BETWEEN $3 AND $4) \
             ORDER BY source_id COLLATE \"C\"",
        )
        .bind(kind.as_str())
        .bind(source)
        .bind(dated_within.map(|d| d.0))
        .bind(dated_within.map(|d| d.1))
        .fetch(&self.pool);
        let get = db("read raw records");
        let mut n = 0;
        let mut date = String::new();
        while let Some(row) = rows.try_next().await.map_err(get)? {
            let day: Option<NaiveDate> = row.try_get(4).map_err(get)?;
            if let Some(d) = day {
                use std::fmt::Write as _;
                date.clear();
                let _ = write!(date, "{d}");
            }
            let record = RawRecord {
                id: row.try_get(0).map_err(get)?,
                source: row.try_get(1).map_err(get)?,
                source_id: row.try_get(2).map_err(get)?,
                scope: row.try_get(3).map_err(get)?,
                date: day.map(|_| date.as_str()),
                content: row.try_get(5).map_err(get)?,
            };
            n += 1;
            if each(record).is_break() {
                break;
            }
        }
        Ok(n)
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1 FROM sync_runs LIMIT 1").fetch_optional(&self.pool).await.map_err(db("ping"))?;
        Ok(())
    }

    async fn run_totals(&self) -> StoreResult<Vec<RunTotals>> {
        let rows = sqlx::query(
            "SELECT source, mode, status, count(*)::bigint, \
             coalesce(sum((stats->>'requests')::bigint), 0)::bigint, \
             coalesce(sum((stats->>'records_read')::bigint), 0)::bigint, \
             coalesce(sum((stats->>'inserted')::bigint), 0)::bigint, \
             coalesce(sum((stats->>'updated')::bigint), 0)::bigint, \
             coalesce(sum((stats->>'deleted')::bigint), 0)::bigint, \
             coalesce(sum((stats->>'rate_limited')::bigint), 0)::bigint, \
             coalesce(sum((stats->>'limit_waits')::bigint), 0)::bigint, \
             coalesce(sum((stats->>'limit_wait_ms')::bigint), 0)::bigint, \
             max(finished_at) \
             FROM sync_runs GROUP BY source, mode, status ORDER BY source, mode, status",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(db("add up runs"))?;
        rows.iter()
            .map(|row| {
                let get = db("add up runs");
                let n = |i: usize| -> StoreResult<u64> { Ok(row.try_get::<i64, _>(i).map_err(get)?.max(0) as u64) };
                let status: &str = row.try_get(2).map_err(get)?;
                Ok(RunTotals {
                    source: row.try_get(0).map_err(get)?,
                    mode: row.try_get(1).map_err(get)?,
                    status: RunStatus::parse(status)
                        .ok_or_else(|| StoreError::Invalid(format!("unknown run status «{status}» in the store")))?,
                    runs: n(3)?,
                    requests: n(4)?,
                    records_read: n(5)?,
                    inserted: n(6)?,
                    updated: n(7)?,
                    deleted: n(8)?,
                    rate_limited: n(9)?,
                    limit_waits: n(10)?,
                    limit_wait_ms: n(11)?,
                    last_finished_at: row.try_get(12).map_err(get)?,
                })
            })
            .collect()
    }

    async fn last_finished_runs(&self) -> StoreResult<Vec<SyncRun>> {
        let rows = sqlx::query(
            "SELECT DISTINCT ON (source) id, source, mode, started_at, finished_at, status, error, stats, error_kind \
             FROM sync_runs WHERE status <> 'running' ORDER BY source, id DESC",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(db("read the last runs"))?;
        rows.iter().map(sync_run).collect()
    }

    async fn lease_takeovers(&self) -> StoreResult<Vec<(String, u64)>> {
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT name, count(*)::bigint FROM lease_takeovers GROUP BY name ORDER BY name")
                .fetch_all(&self.pool)
                .await
                .map_err(db("count lease takeovers"))?;
        Ok(rows.into_iter().map(|(name, n)| (name, n.max(0) as u64)).collect())
    }

    async fn create_api_token(&self, name: &str, hash: &[u8; 32]) -> StoreResult<()> {
        // One statement: a revoked token of that name is replaced, one in force is not (the
        // row stays as it was and nothing is returned).
        let done = sqlx::query(
            "INSERT INTO api_tokens (name, hash, created_at, revoked_at) VALUES ($1, $2, $3, NULL) \
             ON CONFLICT (name) DO UPDATE SET hash = excluded.hash, created_at = excluded.created_at, \
             revoked_at = NULL WHERE api_tokens.revoked_at IS NOT NULL",
        )
        .bind(name)
        .bind(&hash[..])
        .bind(now_micros())
        .execute(&self.pool)
        .await
        .map_err(db("create API token"))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Invalid(format!(
                "an API token named «{name}» is in force: revoke it first (`ejgate token revoke {name}`) or choose \
                 another name"
            )));
        }
        Ok(())
    }

    async fn revoke_api_token(&self, name: &str) -> StoreResult<bool> {
        let done = sqlx::query("UPDATE api_tokens SET revoked_at = $1 WHERE name = $2 AND revoked_at IS NULL")
            .bind(now_micros())
            .bind(name)
            .execute(&self.pool)
            .await
            .map_err(db("revoke API token"))?;
        Ok(done.rows_affected() == 1)
    }

    async fn api_tokens(&self) -> StoreResult<Vec<ApiToken>> {
        let rows: Vec<(String, DateTime<Utc>, Option<DateTime<Utc>>)> =
            sqlx::query_as("SELECT name, created_at, revoked_at FROM api_tokens ORDER BY name COLLATE \"C\"")
                .fetch_all(&self.pool)
                .await
                .map_err(db("list API tokens"))?;
        Ok(rows.into_iter().map(|(name, created_at, revoked_at)| ApiToken { name, created_at, revoked_at }).collect())
    }

    async fn api_token_by_hash(&self, hash: &[u8; 32]) -> StoreResult<Option<ApiToken>> {
        let row: Option<(String, DateTime<Utc>)> =
            sqlx::query_as("SELECT name, created_at FROM api_tokens WHERE hash = $1 AND revoked_at IS NULL")
                .bind(&hash[..])
                .fetch_optional(&self.pool)
                .await
                .map_err(db("look up API token"))?;
        Ok(row.map(|(name, created_at)| ApiToken { name, created_at, revoked_at: None }))
    }
}
