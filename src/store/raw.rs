//! Integer rows through SQLite's C API, for the bulk paths (backup, restore, summaries).
//!
//! rusqlite's `Row::get` checks the column count and the value type and builds a
//! `ValueRef` for every value: for the millions of all-integer interval rows a backup or a
//! restore moves, that costs more than SQLite's own work. [`RawStmt`] is a prepared
//! statement on a rusqlite [`Connection`] that binds and reads plain `i64` (and the odd
//! text parameter) with one C call per value. Everything else keeps using rusqlite.

use rusqlite::ffi;
use rusqlite::Connection;
use std::ffi::{c_int, CStr};
use std::marker::PhantomData;

/// A prepared statement whose result columns are read as integers.
pub struct RawStmt<'c> {
    db: *mut ffi::sqlite3,
    stmt: *mut ffi::sqlite3_stmt,
    ncols: usize,
    _conn: PhantomData<&'c Connection>,
}

fn error(db: *mut ffi::sqlite3, rc: c_int) -> rusqlite::Error {
    // SAFETY: db is the open connection the statement belongs to; errmsg returns a
    // NUL-terminated string owned by SQLite, copied before any other call.
    let msg = unsafe {
        let p = ffi::sqlite3_errmsg(db);
        (!p.is_null()).then(|| CStr::from_ptr(p).to_string_lossy().into_owned())
    };
    rusqlite::Error::SqliteFailure(ffi::Error::new(rc), msg)
}

impl<'c> RawStmt<'c> {
    /// Prepares `sql` on `conn`.
    ///
    /// # Errors
    /// SQLite's message when the statement does not prepare.
    pub fn new(conn: &'c Connection, sql: &str) -> rusqlite::Result<Self> {
        // SAFETY: handle() is the live connection, borrowed for 'c, so it outlives the
        // statement; sql is passed with its length (no NUL needed).
        unsafe {
            let db = conn.handle();
            let mut stmt = std::ptr::null_mut();
            let rc = ffi::sqlite3_prepare_v2(
                db,
                sql.as_ptr().cast(),
                sql.len() as c_int,
                &mut stmt,
                std::ptr::null_mut(),
            );
            if rc != ffi::SQLITE_OK {
                return Err(error(db, rc));
            }
            let ncols = ffi::sqlite3_column_count(stmt) as usize;
            Ok(RawStmt {
                db,
                stmt,
                ncols,
                _conn: PhantomData,
            })
        }
    }

    /// Result columns of the statement.
    pub fn columns(&self) -> usize {
        self.ncols
    }

    fn check(&self, rc: c_int) -> rusqlite::Result<()> {
        if rc == ffi::SQLITE_OK {
            Ok(())
        } else {
            Err(error(self.db, rc))
        }
    }

    /// Binds parameter `i` (1-based).
    pub fn bind_i64(&mut self, i: usize, v: i64) -> rusqlite::Result<()> {
        // SAFETY: stmt is a live prepared statement; SQLite checks the index.
        self.check(unsafe { ffi::sqlite3_bind_int64(self.stmt, i as c_int, v) })
    }

    /// Binds parameter `i` (1-based) to a copy of `s`.
    pub fn bind_text(&mut self, i: usize, s: &str) -> rusqlite::Result<()> {
        // SAFETY: SQLITE_TRANSIENT makes SQLite copy the bytes before returning.
        self.check(unsafe {
            ffi::sqlite3_bind_text(
                self.stmt,
                i as c_int,
                s.as_ptr().cast(),
                s.len() as c_int,
                ffi::SQLITE_TRANSIENT(),
            )
        })
    }

    /// Binds parameters 1.. to `vals`.
    pub fn bind_all(&mut self, vals: &[i64]) -> rusqlite::Result<()> {
        for (i, v) in vals.iter().enumerate() {
            self.bind_i64(i + 1, *v)?;
        }
        Ok(())
    }

    /// Steps once: `true` with a row ready for [`RawStmt::read`], `false` when done (the
    /// statement is then reset for the next run).
    pub fn step(&mut self) -> rusqlite::Result<bool> {
        // SAFETY: stmt is a live prepared statement.
        let rc = unsafe { ffi::sqlite3_step(self.stmt) };
        match rc {
            ffi::SQLITE_ROW => Ok(true),
            ffi::SQLITE_DONE => {
                self.reset();
                Ok(false)
            }
            _ => {
                let e = error(self.db, rc);
                self.reset();
                Err(e)
            }
        }
    }

    /// Runs a statement that returns no rows (an insert), then resets it.
    pub fn execute(&mut self) -> rusqlite::Result<()> {
        while self.step()? {}
        Ok(())
    }

    /// The current row's columns as integers, into `out` (at most `out.len()` columns).
    pub fn read(&self, out: &mut [i64]) {
        for (i, v) in out.iter_mut().enumerate().take(self.ncols) {
            // SAFETY: a row is current (step returned true) and i < column count.
            *v = unsafe { ffi::sqlite3_column_int64(self.stmt, i as c_int) };
        }
    }

    /// Runs the query with `params` and appends every row's columns to `out`, flat.
    /// Returns the number of rows.
    pub fn append_rows(&mut self, params: &[i64], out: &mut Vec<i64>) -> rusqlite::Result<usize> {
        self.bind_all(params)?;
        self.collect_rows(out)
    }

    /// Runs the query with the parameters bound so far and appends every row's columns
    /// to `out`, flat. Returns the number of rows.
    pub fn collect_rows(&mut self, out: &mut Vec<i64>) -> rusqlite::Result<usize> {
        let n = self.ncols;
        let mut rows = 0;
        while self.step()? {
            let at = out.len();
            out.resize(at + n, 0);
            self.read(&mut out[at..]);
            rows += 1;
        }
        Ok(rows)
    }

    fn reset(&mut self) {
        // SAFETY: stmt is a live prepared statement; reset's return code repeats the
        // last step's error, already reported.
        unsafe {
            ffi::sqlite3_reset(self.stmt);
        }
    }
}

impl Drop for RawStmt<'_> {
    fn drop(&mut self) {
        // SAFETY: stmt came from sqlite3_prepare_v2 and is finalized exactly once.
        unsafe {
            ffi::sqlite3_finalize(self.stmt);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_binds_and_reports_errors() {
        let c = Connection::open_in_memory().unwrap();
        c.execute_batch("CREATE TABLE t (a INTEGER, b INTEGER, s TEXT)")
            .unwrap();
        let mut ins = RawStmt::new(&c, "INSERT INTO t (a, b, s) VALUES (?1, ?2, ?3)").unwrap();
        for i in 0..5i64 {
            ins.bind_all(&[i, -i * 1_000_000_000_000]).unwrap();
            ins.bind_text(3, &format!("r{i}")).unwrap();
            ins.execute().unwrap();
        }
        let mut q = RawStmt::new(&c, "SELECT a, b FROM t WHERE a >= ?1 ORDER BY a").unwrap();
        assert_eq!(q.columns(), 2);
        let mut out = vec![];
        assert_eq!(q.append_rows(&[3], &mut out).unwrap(), 2);
        assert_eq!(out, vec![3, -3_000_000_000_000, 4, -4_000_000_000_000]);
        // Reusable after a run.
        out.clear();
        assert_eq!(q.append_rows(&[4], &mut out).unwrap(), 1);
        let s: String = c
            .query_row("SELECT s FROM t WHERE a = 2", [], |r| r.get(0))
            .unwrap();
        assert_eq!(s, "r2");
        let e = RawStmt::new(&c, "SELECT nope FROM t").err().unwrap();
        assert!(e.to_string().contains("no such column"), "{e}");
        c.execute_batch("CREATE UNIQUE INDEX u ON t (a)").unwrap();
        ins.bind_all(&[1, 1]).unwrap();
        ins.bind_text(3, "dup").unwrap();
        let e = ins.execute().unwrap_err();
        assert!(e.to_string().contains("UNIQUE"), "{e}");
    }
}
