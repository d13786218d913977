//! A server's configuration in a temporary directory, and `cms` run with it: for the
//! command-line tests that need no running collector.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A config in a temp dir: server `A`, data in `data/`, the `extra` lines, ACD 1.
pub struct Site {
    pub dir: tempfile::TempDir,
}

impl Site {
    pub fn new(extra: &str) -> Site {
        let site = Site {
            dir: tempfile::tempdir().unwrap(),
        };
        site.configure(extra);
        site
    }
    /// Writes the configuration again, with `extra` instead.
    pub fn configure(&self, extra: &str) {
        let cfg = format!(
            "server_id = \"A\"\ndata_dir = \"data\"\n{extra}\n[[acd]]\nid = 1\nswitch = \"127.0.0.1:9\"\n"
        );
        std::fs::write(self.path("cms.toml"), cfg).unwrap();
    }
    pub fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }
    /// `cms` with this configuration, run from the temp directory (not the config's, so
    /// that relative paths in it must be resolved against the config's folder).
    pub fn cms(&self, args: &[&str]) -> Output {
        self.cms_in(&std::env::temp_dir(), args)
    }
    /// `cms` with this configuration, run from `cwd`.
    pub fn cms_in(&self, cwd: &Path, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_cms"))
            .arg("--config")
            .arg(self.path("cms.toml"))
            .args(args)
            .env_remove("CMS_CONFIG")
            .current_dir(cwd)
            .output()
            .unwrap()
    }
}

/// Exit code and both streams, for failure messages.
pub fn text(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}
