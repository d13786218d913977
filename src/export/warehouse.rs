//! `cms export --warehouse postgres://...`: the pending intervals into a PostgreSQL
//! database shared by many server pairs (docs/warehouse.md; schema `warehouse.sql`).
//!
//! Each batch of intervals is one PostgreSQL transaction: COPY into temporary staging
//! tables, then one `INSERT .. ON CONFLICT` on `cms_interval` that applies the rule (a
//! complete copy replaces an incomplete one, never the reverse; two different complete
//! copies are a conflict, recorded in `cms_conflict`, not overwritten), then the rows of
//! exactly the intervals that insert won are replaced. Rows lock in (acd, istart) order,
//! so two servers exporting the same site at once queue behind each other instead of
//! deadlocking; a deadlock or serialization failure is retried. A batch is marked sent
//! in the server's database after its commit: a killed export leaves whole batches,
//! and its rerun sends the rest (a batch sent twice changes nothing: the rule is
//! idempotent). It does not choose the intervals (that is [`super::track`]), nor decide
//! or verify TLS (that is [`super::tls`]).

use super::tls::{self, Transport, Trust};
use super::{sql, track, width, ExportError, Interval, Report, RowReader};
use crate::config::Config;
use crate::items::TABLES;
use crate::store::Store;
use futures::SinkExt;
use std::io::Write;
use std::path::Path;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_postgres::{Client, NoTls};

/// The warehouse schema, applied by every export (idempotent).
pub const SCHEMA: &str = include_str!("warehouse.sql");

/// Rows per batch unless `--batch-rows` says otherwise: large enough for COPY to pay,
/// small enough that a batch's transaction stays short (about a second).
pub const BATCH_ROWS: usize = 100_000;

/// How long one statement or one lock wait may take before the export gives up with a
/// message naming the warehouse (another exporter holding the same site's rows finishes
/// its batch well within this).
const STATEMENT_TIMEOUT: &str = "300s";
const LOCK_TIMEOUT: &str = "120s";
/// Connecting, when the URL sets no `connect_timeout`.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// Attempts of a batch that meets a deadlock or a serialization failure.
const ATTEMPTS: u32 = 4;

/// The target name of a warehouse export: site, host, port and database, never the
/// password.
pub fn target_name(pg: &tokio_postgres::Config, site: &str) -> String {
    let host = host(pg);
    let port = pg.get_ports().first().copied().unwrap_or(5432);
    let db = pg.get_dbname().or(pg.get_user()).unwrap_or("postgres");
    format!("warehouse:{site}@{host}:{port}/{db}")
}

/// The (first) host of the URL, as connecting uses it (and TLS checks it against the
/// server's certificate).
fn host(pg: &tokio_postgres::Config) -> String {
    pg.get_hosts()
        .first()
        .map(|h| match h {
            tokio_postgres::config::Host::Tcp(s) => s.clone(),
            #[cfg(unix)]
            tokio_postgres::config::Host::Unix(p) => p.display().to_string(),
        })
        .unwrap_or_else(|| "localhost".into())
}

/// Parses a warehouse URL (or key=value string) without ever echoing its password.
///
/// # Errors
/// The URL does not parse.
pub fn parse_url(url: &str) -> Result<tokio_postgres::Config, ExportError> {
    let mut pg: tokio_postgres::Config = url.parse().map_err(|e| ExportError::Usage(format!(
        "--warehouse: not a PostgreSQL connection URL ({e}); expected postgres://user@host:port/database"
    )))?;
    if pg.get_connect_timeout().is_none() {
        pg.connect_timeout(CONNECT_TIMEOUT);
    }
    Ok(pg)
}

/// A site name: what keys every row of this pair in the warehouse.
///
/// # Errors
/// Empty, or characters other than letters, digits, `-`, `_` and `.`.
pub fn check_site(site: &str) -> Result<(), ExportError> {
    if site.is_empty()
        || site.len() > 64
        || !site
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(ExportError::Usage(format!(
            "--site {site:?}: a site is 1 to 64 letters, digits, '-', '_' or '.' (the same on both servers of a pair)"
        )));
    }
    Ok(())
}

fn stage_sql() -> String {
    let mut s = String::from(
        "CREATE TEMP TABLE IF NOT EXISTS stage_interval (acd integer, istart bigint,
           row_date date, starttime integer, intrvl integer, status text, reasons text,
           row_count bigint, checksum text, source text) ON COMMIT DELETE ROWS;
         CREATE TEMP TABLE IF NOT EXISTS won (acd integer, istart bigint) ON COMMIT DELETE ROWS;",
    );
    for t in TABLES {
        let cols: Vec<String> = t
            .keys
            .iter()
            .chain(t.items.iter().map(|(n, _)| n))
            .map(|c| format!("{c} bigint"))
            .collect();
        s.push_str(&format!(
            "CREATE TEMP TABLE IF NOT EXISTS stage_h{} (acd integer, istart bigint, {}) ON COMMIT DELETE ROWS;",
            t.name,
            cols.join(", ")
        ));
    }
    s
}

/// The rule, as one statement: the intervals of the batch this copy wins go to `won`.
const UPSERT: &str = "
WITH up AS (
  INSERT INTO cms_interval AS w (site, acd, istart, interval_start, row_date, starttime,
      intrvl, status, reasons, row_count, checksum, server, source, loaded_at)
  SELECT $1, acd, istart, to_timestamp(istart), row_date, starttime, intrvl, status,
      reasons, row_count, checksum, $2, source, now()
  FROM stage_interval ORDER BY acd, istart
  ON CONFLICT (site, acd, istart) DO UPDATE SET interval_start = EXCLUDED.interval_start,
      row_date = EXCLUDED.row_date, starttime = EXCLUDED.starttime,
      intrvl = EXCLUDED.intrvl, status = EXCLUDED.status, reasons = EXCLUDED.reasons,
      row_count = EXCLUDED.row_count, checksum = EXCLUDED.checksum,
      server = EXCLUDED.server, source = EXCLUDED.source, loaded_at = EXCLUDED.loaded_at
  WHERE (w.status = 'incomplete' AND EXCLUDED.status = 'complete')
     OR (w.status = 'incomplete' AND EXCLUDED.status = 'incomplete'
         AND (EXCLUDED.row_count, EXCLUDED.checksum) > (w.row_count, w.checksum))
  RETURNING acd, istart)
INSERT INTO won SELECT acd, istart FROM up";

/// Two complete copies that differ: recorded, the one in `cms_interval` stays.
const CONFLICTS: &str = "
INSERT INTO cms_conflict AS c (site, acd, istart, checksum_kept, checksum_other, server_other)
SELECT $1, s.acd, s.istart, w.checksum, s.checksum, $2
FROM stage_interval s JOIN cms_interval w ON w.site = $1 AND w.acd = s.acd AND w.istart = s.istart
WHERE s.status = 'complete' AND w.status = 'complete' AND s.checksum <> w.checksum
ON CONFLICT (site, acd, istart, checksum_other) DO UPDATE SET last_seen = now()";

fn replace_rows_sql() -> Vec<String> {
    let mut v = Vec::new();
    for t in TABLES {
        let keys = t.keys.join(", ");
        let items: Vec<&str> = t.items.iter().map(|(n, _)| *n).collect();
        let items = items.join(", ");
        let s_keys: Vec<String> = t.keys.iter().map(|k| format!("s.{k}")).collect();
        let s_items: Vec<String> = t.items.iter().map(|(n, _)| format!("s.{n}")).collect();
        v.push(format!(
            "DELETE FROM cms_h{n} h USING won w WHERE h.site = $1 AND h.acd = w.acd AND h.istart = w.istart",
            n = t.name
        ));
        v.push(format!(
            "INSERT INTO cms_h{n} (site, acd, istart, {keys}, status, checksum, {items})
             SELECT $1, s.acd, s.istart, {sk}, i.status, i.checksum, {si}
             FROM stage_h{n} s JOIN won w ON w.acd = s.acd AND w.istart = s.istart
             JOIN stage_interval i ON i.acd = s.acd AND i.istart = s.istart",
            n = t.name,
            sk = s_keys.join(", "),
            si = s_items.join(", ")
        ));
    }
    v
}

/// One batch's COPY data: the interval list and one buffer per family, in COPY's text
/// format (tab-separated, one line per row).
struct Batch<'a> {
    intervals: &'a [Interval],
    stage_interval: Vec<u8>,
    families: Vec<Vec<u8>>,
    rows: u64,
}

fn push_int(buf: &mut Vec<u8>, v: i64) {
    let mut b = itoa::Buffer::new();
    buf.extend_from_slice(b.format(v).as_bytes());
}

/// COPY text escaping of a text value (backslash, tab, line breaks).
fn push_text(buf: &mut Vec<u8>, s: &str) {
    for c in s.bytes() {
        match c {
            b'\\' => buf.extend_from_slice(b"\\\\"),
            b'\t' => buf.extend_from_slice(b"\\t"),
            b'\n' => buf.extend_from_slice(b"\\n"),
            b'\r' => buf.extend_from_slice(b"\\r"),
            _ => buf.push(c),
        }
    }
}

fn build<'a>(
    intervals: &'a [Interval],
    reader: &mut RowReader<'_>,
    scratch: &mut Vec<i64>,
) -> rusqlite::Result<Batch<'a>> {
    let mut b = Batch {
        intervals,
        stage_interval: Vec::with_capacity(intervals.len() * 160),
        families: vec![Vec::new(); TABLES.len()],
        rows: 0,
    };
    for i in intervals {
        let s = &mut b.stage_interval;
        let _ = write!(
            s,
            "{}\t{}\t{}\t{}\t{}\t{}\t",
            i.acd,
            i.istart,
            i.row_date,
            i.starttime,
            i.intrvl,
            i.status.as_str()
        );
        push_text(s, &i.reasons);
        let _ = write!(s, "\t{}\t{}\t", i.row_count, i.checksum);
        push_text(s, &i.source);
        s.push(b'\n');
        for fam in 0..TABLES.len() {
            scratch.clear();
            let n = reader.read(fam, i.acd, i.istart, scratch)?;
            b.rows += n as u64;
            let buf = &mut b.families[fam];
            for row in scratch.chunks_exact(width(fam)) {
                push_int(buf, i64::from(i.acd));
                buf.push(b'\t');
                push_int(buf, i.istart);
                for v in row {
                    buf.push(b'\t');
                    push_int(buf, *v);
                }
                buf.push(b'\n');
            }
        }
    }
    Ok(b)
}

/// Splits `intervals` into batches of about `batch_rows` rows (never an empty batch,
/// never an interval split).
fn batches(intervals: &[Interval], batch_rows: usize) -> Vec<&[Interval]> {
    let mut out = Vec::new();
    let mut from = 0;
    let mut rows = 0usize;
    for (k, i) in intervals.iter().enumerate() {
        rows += i.row_count.max(1) as usize;
        if rows >= batch_rows {
            out.push(&intervals[from..=k]);
            from = k + 1;
            rows = 0;
        }
    }
    if from < intervals.len() {
        out.push(&intervals[from..]);
    }
    out
}

/// What the caller of [`export`] chooses.
pub struct Options<'a> {
    pub url: &'a str,
    pub site: &'a str,
    pub acds: &'a [u16],
    pub batch_rows: usize,
    /// `--warehouse-ca`: verify the server's certificate against this PEM file (TLS
    /// required); see [`tls::transport`].
    pub ca: Option<&'a Path>,
}

/// Exports the pending intervals of `store` into the warehouse.
///
/// # Errors
/// The warehouse cannot be reached, its certificate is not trusted, or it refuses a
/// statement (the message names it, never its password), or the database cannot be
/// read. Batches committed before the error stay, and are marked sent. A CA file that
/// cannot be used fails before anything is connected or written.
pub fn export(cfg: &Config, store: &Store, o: &Options<'_>) -> Result<Report, ExportError> {
    check_site(o.site)?;
    let mut pg = parse_url(o.url)?;
    let target = target_name(&pg, o.site);
    let transport = tls::transport(&mut pg, o.ca).map_err(|e| match e {
        tls::SetupError::Usage(m) => ExportError::Usage(m),
        tls::SetupError::Trust(what) => ExportError::Warehouse {
            target: target.clone(),
            what,
        },
    })?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|source| ExportError::Io {
            path: store.path.clone(),
            what: "cannot start the async runtime",
            source,
        })?;
    rt.block_on(run(cfg, store, &pg, transport, &target, o))
}

/// Connects as `transport` says and drives the connection on its own task.
async fn connect(
    pg: &tokio_postgres::Config,
    transport: Transport,
) -> Result<(Client, tokio::task::JoinHandle<()>), tokio_postgres::Error> {
    async fn drive<S, T>(conn: tokio_postgres::Connection<S, T>)
    where
        S: AsyncRead + AsyncWrite + Unpin,
        T: AsyncRead + AsyncWrite + Unpin,
    {
        if let Err(e) = conn.await {
            tracing::warn!(error = %e, "warehouse connection ended");
        }
    }
    Ok(match transport {
        Transport::Plain => {
            let (client, conn) = pg.connect(NoTls).await?;
            (client, tokio::spawn(drive(conn)))
        }
        Transport::Tls { connector, .. } => {
            let (client, conn) = pg.connect(connector).await?;
            (client, tokio::spawn(drive(conn)))
        }
    })
}

async fn run(
    cfg: &Config,
    store: &Store,
    pg: &tokio_postgres::Config,
    transport: Transport,
    target: &str,
    o: &Options<'_>,
) -> Result<Report, ExportError> {
    let started = std::time::Instant::now();
    let wh = |what: String| ExportError::Warehouse {
        target: target.to_string(),
        what,
    };
    let pgerr = |doing: &str, e: tokio_postgres::Error| {
        let detail = match e.as_db_error() {
            Some(d) => format!("{} ({})", d.message(), d.code().code()),
            None => e.to_string(),
        };
        wh(format!("{doing}: {detail}"))
    };
    let trust: Option<Trust> = match &transport {
        Transport::Plain => None,
        Transport::Tls { trust, .. } => Some(trust.clone()),
    };
    let (mut client, driver) = connect(pg, transport).await.map_err(|e| {
        let doing = match trust {
            Some(_) => "cannot connect over TLS",
            None => "cannot connect",
        };
        wh(format!(
            "{doing}: {}",
            tls::connect_failure(&e, trust.as_ref(), &host(pg))
        ))
    })?;
    client
        .batch_execute(&format!(
            "SET statement_timeout = '{STATEMENT_TIMEOUT}'; SET lock_timeout = '{LOCK_TIMEOUT}';"
        ))
        .await
        .map_err(|e| pgerr("cannot set the session's timeouts", e))?;
    {
        let tx = client
            .transaction()
            .await
            .map_err(|e| pgerr("cannot begin", e))?;
        // One exporter at a time creates the schema (concurrent CREATE IF NOT EXISTS
        // of one table can fail on the catalog's unique index).
        tx.batch_execute(&format!("SELECT pg_advisory_xact_lock(7231015); {SCHEMA}"))
            .await
            .map_err(|e| pgerr("cannot create the warehouse schema", e))?;
        tx.commit()
            .await
            .map_err(|e| pgerr("cannot create the warehouse schema", e))?;
    }
    client
        .batch_execute(&stage_sql())
        .await
        .map_err(|e| pgerr("cannot create the staging tables", e))?;
    let replace = replace_rows_sql();

    let snap = super::snapshot(store)?;
    let pending = super::pending(&snap, target, o.acds)?;
    let e = sql(&store.path);
    let mut reader = RowReader::new(&snap.conn).map_err(&e)?;
    let mut scratch = Vec::new();
    let mut report = Report::empty(target, pending.position);
    let stall = test_stall();
    for (k, chunk) in batches(&pending.intervals, o.batch_rows.max(1))
        .into_iter()
        .enumerate()
    {
        let batch = build(chunk, &mut reader, &mut scratch).map_err(&e)?;
        let mut attempt = 0;
        let conflicts = loop {
            attempt += 1;
            match send(
                &mut client,
                &batch,
                o.site,
                &cfg.server_id,
                &replace,
                stall.as_ref().filter(|s| s.0 == k + 1),
            )
            .await
            {
                Ok(c) => break c,
                Err(err) if attempt < ATTEMPTS && retryable(&err) => {
                    tracing::warn!(error = %err, attempt, "warehouse batch retried");
                    continue;
                }
                Err(err) => {
                    return Err(pgerr(
                        &format!("batch {} of {} intervals", k + 1, chunk.len()),
                        err,
                    ))
                }
            }
        };
        report.conflicts += conflicts;
        report.rows += batch.rows;
        for i in batch.intervals {
            match i.change {
                track::Change::New => report.new += 1,
                track::Change::Correction => report.corrections += 1,
            }
        }
        track::mark_sent(&store.conn, target, batch.intervals, super::now()).map_err(&e)?;
    }
    track::finish(&store.conn, target, pending.position, super::now()).map_err(&e)?;
    drop(client);
    let _ = tokio::time::timeout(Duration::from_secs(5), driver).await;
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

fn retryable(e: &tokio_postgres::Error) -> bool {
    use tokio_postgres::error::SqlState;
    matches!(
        e.code(),
        Some(c) if *c == SqlState::T_R_DEADLOCK_DETECTED || *c == SqlState::T_R_SERIALIZATION_FAILURE
    )
}

/// The test hook of the kill-midway test: `CMS_TEST_EXPORT_STALL=N:FILE` makes batch N
/// create FILE and wait (at most a minute) before its commit.
fn test_stall() -> Option<(usize, std::path::PathBuf)> {
    let v = std::env::var("CMS_TEST_EXPORT_STALL").ok()?;
    let (n, f) = v.split_once(':')?;
    Some((n.parse().ok()?, f.into()))
}

/// Sends one batch in one transaction; returns the conflicts it recorded.
async fn send(
    client: &mut Client,
    b: &Batch<'_>,
    site: &str,
    server: &str,
    replace: &[String],
    stall: Option<&(usize, std::path::PathBuf)>,
) -> Result<u64, tokio_postgres::Error> {
    let tx = client.transaction().await?;
    copy(&tx, "COPY stage_interval FROM STDIN", &b.stage_interval).await?;
    for (fam, t) in TABLES.iter().enumerate() {
        if !b.families[fam].is_empty() {
            copy(
                &tx,
                &format!("COPY stage_h{} FROM STDIN", t.name),
                &b.families[fam],
            )
            .await?;
        }
    }
    tx.execute(UPSERT, &[&site, &server]).await?;
    let conflicts = tx.execute(CONFLICTS, &[&site, &server]).await?;
    for s in replace {
        tx.execute(s.as_str(), &[&site]).await?;
    }
    if let Some((_, file)) = stall {
        let _ = std::fs::write(file, b"stalled before commit\n");
        tokio::time::sleep(Duration::from_secs(60)).await;
    }
    tx.commit().await?;
    Ok(conflicts)
}

async fn copy(
    tx: &tokio_postgres::Transaction<'_>,
    sql: &str,
    data: &[u8],
) -> Result<(), tokio_postgres::Error> {
    let sink = tx.copy_in::<_, bytes::Bytes>(sql).await?;
    futures::pin_mut!(sink);
    for piece in data.chunks(1 << 20) {
        sink.feed(bytes::Bytes::copy_from_slice(piece)).await?;
    }
    sink.as_mut().finish().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The schema file has one table per family with the catalogue's columns in order.
    #[test]
    fn schema_file_matches_the_item_catalogue() {
        for t in TABLES {
            let head = format!("CREATE TABLE IF NOT EXISTS cms_h{} (", t.name);
            let at = SCHEMA.find(&head).unwrap_or_else(|| panic!("no {head}"));
            let body = &SCHEMA[at + head.len()..];
            let body = &body[..body.find("PRIMARY KEY").unwrap()];
            let cols: Vec<&str> = body
                .split(',')
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(|c| c.split_whitespace().next().unwrap())
                .collect();
            let mut want = vec!["site", "acd", "istart"];
            want.extend(t.keys);
            want.extend(["status", "checksum"]);
            want.extend(t.items.iter().map(|(n, _)| *n));
            assert_eq!(cols, want, "cms_h{}", t.name);
        }
    }

    #[test]
    fn sites_and_urls_are_checked_and_passwords_never_named() {
        assert!(check_site("paris-1").is_ok());
        for bad in ["", "a b", "x;drop", &"s".repeat(65)] {
            assert!(check_site(bad).is_err(), "{bad:?}");
        }
        let pg = parse_url("postgres://cms:secret@db.example:6543/wh").unwrap();
        let name = target_name(&pg, "paris");
        assert_eq!(name, "warehouse:paris@db.example:6543/wh");
        let err = parse_url("postgres://cms:secret@db:notaport/wh")
            .unwrap_err()
            .to_string();
        assert!(!err.contains("secret"), "{err}");
    }

    #[test]
    fn copy_text_escapes_what_copy_reads_specially() {
        let mut b = Vec::new();
        push_text(&mut b, "a\tb\\c\nd");
        assert_eq!(b, b"a\\tb\\\\c\\nd");
    }
}
