//! Named points inside the write protocol (and the parser worker) where a test can stop the process: with
//! `LARIAT_TEST_PAUSE_AT=<name>` the writer announces `lariat: paused at <name>` on stderr when
//! it gets there and waits to be killed, so a crash test kills exactly there instead of after a
//! guessed delay. Without the variable a point costs one cached comparison.

use std::sync::OnceLock;
use std::time::Duration;

/// SQL has the documents (pending); the derived indexes do not yet.
pub const WRITE_SQL: &str = "write-sql";
/// Both derived indexes have them; SQL does not yet say they are indexed.
pub const WRITE_INDEXES: &str = "write-indexes";
/// The parser worker has the file and is about to parse it (a test of its time limit).
pub const PARSE: &str = "parse";
/// SQL has deleted the documents and left tombstones; the derived indexes still hold them.
pub const DELETE_SQL: &str = "delete-sql";

/// `lariat migrate-store` committed a batch of rows into the target.
pub const COPY_BATCH: &str = "copy-batch";

/// The environment variable that names the point to stop at.
pub const VARIABLE: &str = "LARIAT_TEST_PAUSE_AT";

fn wanted() -> Option<&'static str> {
    static AT: OnceLock<Option<String>> = OnceLock::new();
    AT.get_or_init(|| std::env::var(VARIABLE).ok()).as_deref()
}

/// Stops here for good when the test asked for this point.
pub fn reached(point: &str) {
    if wanted() != Some(point) {
        return;
    }
    eprintln!("lariat: paused at {point}");
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}
