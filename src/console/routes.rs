//! The console's routes on the collector's HTTP server (`web`): `/` (overview),
//! `/coverage` and `/report`. Each request opens the database read-only on a blocking
//! thread, renders its page and closes it; a bad parameter is a 400 page saying why, a
//! database that cannot be read a 500 page naming it. The access rule (the token on a
//! non-loopback address) is `web`'s, around these routes.

use super::{html, ConsoleError, Params};
use crate::config::Config;
use crate::store::Store;
use crate::web::WebState;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

/// What a page may load: nothing but its own inline stylesheet and the empty icon, and
/// its forms go back to this server. No script runs at all.
const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; \
                   form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// Which page a request asks for.
#[derive(Debug, Clone, Copy)]
enum Which {
    Overview,
    Coverage,
    Report,
}

pub(super) async fn overview(State(s): State<WebState>, RawQuery(q): RawQuery) -> Response {
    respond(s.config, Which::Overview, q).await
}

pub(super) async fn coverage(State(s): State<WebState>, RawQuery(q): RawQuery) -> Response {
    respond(s.config, Which::Coverage, q).await
}

pub(super) async fn report(State(s): State<WebState>, RawQuery(q): RawQuery) -> Response {
    respond(s.config, Which::Report, q).await
}

/// Renders the page on a blocking thread (SQLite reads block) and answers with it.
async fn respond(cfg: Arc<Config>, which: Which, q: Option<String>) -> Response {
    let server = cfg.server_id.clone();
    let params = parse_query(q.as_deref().unwrap_or(""));
    let job = tokio::task::spawn_blocking(move || render(&cfg, which, &params));
    let (status, body) = match job.await {
        Ok(Ok(html)) => (StatusCode::OK, html),
        Ok(Err(ConsoleError::BadRequest(why))) => (
            StatusCode::BAD_REQUEST,
            html::error_page(&server, 400, &why),
        ),
        Ok(Err(ConsoleError::Database(why))) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            html::error_page(&server, 500, &why),
        ),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            html::error_page(&server, 500, &format!("the page could not be made: {e}")),
        ),
    };
    (
        status,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(CSP),
            ),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
        ],
        body,
    )
        .into_response()
}

/// One page from a database opened read-only for this request.
fn render(cfg: &Config, which: Which, p: &Params) -> super::Result<String> {
    let store = Store::open_read_only(&cfg.db_path())?;
    let now = crate::store::intervals::now_secs();
    match which {
        Which::Overview => super::overview::render(cfg, &store, now),
        Which::Coverage => super::coverage::render(cfg, &store, p, now),
        Which::Report => super::interval_report::render(cfg, &store, p, now),
    }
}

/// The parameters of a query string (`application/x-www-form-urlencoded`, as a GET form
/// sends them): `+` is a space, `%XX` a byte; bytes that are not UTF-8 are replaced.
pub(super) fn parse_query(q: &str) -> Params {
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(&s.replace('+', " "))
            .decode_utf8_lossy()
            .into_owned()
    };
    Params::of(q.split('&').filter(|p| !p.is_empty()).map(|p| {
        let (k, v) = p.split_once('=').unwrap_or((p, ""));
        (decode(k), decode(v))
    }))
}

#[cfg(test)]
mod tests {
    use super::parse_query;

    #[test]
    fn query_strings_decode_as_forms_send_them() {
        let p = parse_query("acd=1&from=2026-11-01&to=&x=a+b%3Cc%3E&acd=2&flag&%ZZ=1");
        assert_eq!(p.get("acd"), Some("2"), "the last value wins");
        assert_eq!(p.get("from"), Some("2026-11-01"));
        assert_eq!(p.get("to"), None, "an empty field is absent");
        assert_eq!(p.get("x"), Some("a b<c>"));
        assert_eq!(p.get("flag"), None);
        assert_eq!(
            p.0.get("%ZZ").map(String::as_str),
            Some("1"),
            "a bad escape stays as it is"
        );
        assert!(parse_query("").0.is_empty());
    }
}
