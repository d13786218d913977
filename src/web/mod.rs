//! The HTTP endpoints of `cms collect` (issue #14): `/livez`, `/readyz`, `/metrics`, and
//! the routes the web console adds.
//!
//! Owns the `[http]` section (`listen`, `token`, `enabled`), the router ([`router`]), the
//! access rule (loopback: open; any other address: the token on every route except
//! `/livez`, as `Authorization: Bearer TOKEN` for scrapers or as the password of HTTP
//! Basic credentials, which a browser asks its user for; compared in constant time) and the server task
//! ([`serve`]), which runs on the collector's tokio runtime and stops with the
//! collector's one shutdown path. Not responsible for what the metrics count
//! ([`crate::metrics`]) nor for the console's pages.
//!
//! The endpoints compile and work on every target (no Unix-only calls here).

use crate::config::Config;
use crate::domain::LinkState;
use crate::metrics::Metrics;
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Deserialize;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::watch;
use tracing::{error, info};

/// The default `http.listen`: loopback only, the port registered for Prometheus
/// exporters of this kind.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9464";

/// The shortest `http.token` accepted: a token anyone can guess protects nothing.
pub const MIN_TOKEN_LEN: usize = 16;

/// The validated `[http]` section.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// `false`: no HTTP server at all (`enabled = false`).
    pub enabled: bool,
    pub listen: SocketAddr,
    /// Required when `listen` is not a loopback address.
    pub token: Option<String>,
}

impl Default for HttpConfig {
    fn default() -> HttpConfig {
        HttpConfig {
            enabled: true,
            listen: DEFAULT_LISTEN.parse().expect("valid default"),
            token: None,
        }
    }
}

impl HttpConfig {
    /// Whether requests must carry the token: on any address other than loopback.
    pub fn needs_token(&self) -> bool {
        !self.listen.ip().is_loopback()
    }
}

/// The `[http]` table as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHttp {
    enabled: Option<bool>,
    listen: Option<String>,
    token: Option<String>,
}

impl RawHttp {
    /// Checks the section; an error names the key (`http.listen`, ...) and the reason.
    ///
    /// # Errors
    /// A malformed address, a short token, or a non-loopback address without a token.
    pub fn validate(self) -> Result<HttpConfig, String> {
        let listen = match self.listen {
            None => DEFAULT_LISTEN.parse().expect("valid default"),
            Some(l) => l
                .parse::<SocketAddr>()
                .map_err(|_| format!("http.listen = {l:?}: not IP:PORT (e.g. {DEFAULT_LISTEN})"))?,
        };
        if let Some(t) = &self.token {
            if t.chars().count() < MIN_TOKEN_LEN || t.chars().any(char::is_whitespace) {
                return Err(format!(
                    "http.token: must be at least {MIN_TOKEN_LEN} characters without spaces"
                ));
            }
        }
        let h = HttpConfig {
            enabled: self.enabled.unwrap_or(true),
            listen,
            token: self.token,
        };
        if h.enabled && h.needs_token() && h.token.is_none() {
            return Err(format!(
                "http.listen = \"{listen}\" is not a loopback address: set http.token, which \
                 every request must then carry (or listen on 127.0.0.1)"
            ));
        }
        Ok(h)
    }
}

/// What every route can read: the configuration and the collector's live state.
#[derive(Clone)]
pub struct WebState {
    /// The collector's configuration (data directory, ACDs, peer section).
    pub config: Arc<Config>,
    /// The registry and the live link and peer states ([`crate::metrics`]).
    pub metrics: Arc<Metrics>,
}

/// The whole application: `/livez` open to all, every other route behind the access
/// rule.
pub fn router(state: WebState) -> Router {
    let protected = Router::new()
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(state.clone())
        .merge(crate::console::router(state.clone()));
    // The web console's routes are merged here, behind the same access rule.
    protected
        .layer(axum::middleware::from_fn_with_state(state, access))
        .route("/livez", get(livez))
}

/// The process and its runtime answer.
async fn livez() -> &'static str {
    "ok\n"
}

/// 200 when every ACD link is in data transfer and the peer (when configured) was
/// reachable at its last session; otherwise 503 with one line per failing part.
async fn readyz(State(s): State<WebState>) -> Response {
    let mut why = String::new();
    for acd in &s.config.acds {
        match s.metrics.link(acd.acd) {
            (LinkState::DataTransfer, _) => {}
            (state, detail) if detail.is_empty() => {
                let _ = writeln!(why, "acd {}: link {state}", acd.acd);
            }
            (state, detail) => {
                let _ = writeln!(why, "acd {}: link {state}: {detail}", acd.acd);
            }
        }
    }
    if let Some(p) = &s.config.peer {
        match s.metrics.peer() {
            Some((true, _)) => {}
            Some((false, r)) if !r.is_empty() => {
                let _ = writeln!(why, "peer {}: not reachable: {r}", p.address);
            }
            _ => {
                let _ = writeln!(why, "peer {}: no session yet", p.address);
            }
        }
    }
    if why.is_empty() {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, why).into_response()
    }
}

/// The registry in the Prometheus text format; the database's part is read on a blocking
/// thread, so a slow disk never stalls the runtime.
async fn metrics(State(s): State<WebState>) -> Response {
    let text = tokio::task::spawn_blocking(move || s.metrics.encode(&s.config)).await;
    match text {
        Ok(t) => ([(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)], t).into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("metrics: the encoder failed: {e}\n"),
        )
            .into_response(),
    }
}

/// The token an `Authorization` header presents: `Bearer TOKEN` (a scraper), or `Basic`
/// credentials whose password is the token (a browser; the user name is not checked).
fn presented(authorization: &str) -> Option<String> {
    use base64::Engine as _;
    if let Some(t) = authorization.strip_prefix("Bearer ") {
        return Some(t.to_string());
    }
    let b64 = authorization.strip_prefix("Basic ")?;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    text.split_once(':')
        .map(|(_, password)| password.to_string())
}

/// The access rule: on a non-loopback address, the token (see [`presented`]). A refusal
/// offers both schemes, so a browser shows its login box.
async fn access(State(s): State<WebState>, req: Request, next: Next) -> Response {
    let Some(token) = s.config.http.token.as_deref() else {
        return next.run(req).await;
    };
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(presented)
        .unwrap_or_default();
    if token_matches(&given, token) {
        next.run(req).await
    } else {
        let mut r = (
            StatusCode::UNAUTHORIZED,
            "the token is required (http.token): Authorization: Bearer TOKEN, or any user \
             name with the token as password\n",
        )
            .into_response();
        for scheme in [
            "Basic realm=\"cms\", charset=\"UTF-8\"",
            "Bearer realm=\"cms\"",
        ] {
            r.headers_mut().append(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static(scheme),
            );
        }
        r
    }
}

/// Compares in constant time: both sides are hashed and the hashes compared with
/// BLAKE3's constant-time equality, so neither the length nor the first difference
/// shows in the time taken.
fn token_matches(given: &str, token: &str) -> bool {
    blake3::hash(given.as_bytes()) == blake3::hash(token.as_bytes())
}

/// Binds `http.listen` (so a test or an operator learns the port at once) and returns
/// the server's task, which ends when `stop` turns true. A listen address that cannot
/// be bound is logged as an error and the collector goes on collecting without it.
pub async fn serve(
    state: WebState,
    mut stop: watch::Receiver<bool>,
) -> Option<tokio::task::JoinHandle<()>> {
    let h = &state.config.http;
    if !h.enabled {
        info!("HTTP off (http.enabled = false)");
        return None;
    }
    let listener = match tokio::net::TcpListener::bind(h.listen).await {
        Ok(l) => l,
        Err(e) => {
            error!(
                "http.listen {}: cannot listen: {e}; /livez, /readyz and /metrics are not served",
                h.listen
            );
            return None;
        }
    };
    let addr = listener.local_addr().unwrap_or(h.listen);
    let access = if h.token.is_some() {
        "bearer token required except on /livez"
    } else {
        "loopback, no token"
    };
    info!(%addr, access, "serving HTTP: /livez /readyz /metrics");
    let app = router(state);
    Some(tokio::spawn(async move {
        let stopped = async move {
            let _ = stop.wait_for(|s| *s).await;
        };
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(stopped)
            .await
        {
            error!(%addr, "HTTP server failed: {e}");
        }
    }))
}

#[cfg(test)]
mod tests;
