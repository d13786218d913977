//! The one error type of `merge`. Every message names the file, database or peer and
//! the reason (DOMAIN.md promise 6); [`Error::Context`] says what merge was doing, as
//! `/var/lib/cms/cms.db: reading the database: no such table: dvdn`.

use crate::archive::ArchiveError;
use crate::store::StoreError;

/// What went wrong in a backup or a restore.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file, a request or a destination refused, or a failure, said whole.
    #[error("{0}")]
    Message(String),
    /// What merge was doing when `source` failed.
    #[error("{what}: {source}")]
    Context {
        what: String,
        #[source]
        source: Box<Error>,
    },
    #[error("{0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("{0}")]
    Archive(#[from] ArchiveError),
    #[error("{0}")]
    Store(#[from] StoreError),
    /// A summary that cannot be built (its SQL, or a sum over 64 bits).
    #[error("{0}")]
    Sum(#[from] crate::store::summary::SumError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Json(#[from] serde_json::Error),
    /// An error of another area (opening the database, a gap report), with its chain.
    #[error("{}", chain(.0.as_ref()))]
    Other(Box<dyn std::error::Error + Send + Sync>),
}

pub type Result<T> = std::result::Result<T, Error>;

/// An error and its sources, each said once, joined with `: `.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if !out.contains(&t) {
            out = format!("{out}: {t}");
        }
        cur = c.source();
    }
    out
}

impl Error {
    /// Whether some error in the chain is a `T` for which `f` holds.
    pub fn any<T: std::error::Error + 'static>(&self, f: impl Fn(&T) -> bool) -> bool {
        let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(self);
        while let Some(c) = cur {
            if c.downcast_ref::<T>().is_some_and(&f) {
                return true;
            }
            cur = match c.downcast_ref::<Error>() {
                // `Other` holds its error; the derived source is the boxed one.
                Some(Error::Other(b)) => Some(b.as_ref()),
                _ => c.source(),
            };
        }
        false
    }
}

/// `with_context` on results and options of merge: says what merge was doing.
pub(crate) trait Context<T> {
    fn with_context(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T, E: Into<Error>> Context<T> for std::result::Result<T, E> {
    fn with_context(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| Error::Context {
            what: what(),
            source: Box::new(e.into()),
        })
    }
}

impl<T> Context<T> for Option<T> {
    fn with_context(self, what: impl FnOnce() -> String) -> Result<T> {
        self.ok_or_else(|| Error::Message(what()))
    }
}

/// Returns an [`Error::Message`] made with `format!`.
macro_rules! bail {
    ($($t:tt)*) => {
        return Err($crate::merge::Error::Message(format!($($t)*)))
    };
}
pub(crate) use bail;

/// An [`Error::Message`] made with `format!`.
macro_rules! msg {
    ($($t:tt)*) => {
        $crate::merge::Error::Message(format!($($t)*))
    };
}
pub(crate) use msg;
