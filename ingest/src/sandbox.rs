//! Untrusted files are parsed in a child process under limits, so a parser that loops, recurses
//! or allocates without bound fails that one file instead of taking the server down.
//!
//! The child is the running binary itself, started as `lariat parse-worker` (the binary routes
//! that subcommand to [`serve_worker`]). It caps its own data segment and CPU time with
//! `setrlimit`, reads one request on stdin — a JSON header line, then the file's bytes — parses it
//! with [`loaders::load`] and writes one JSON [`Reply`] on stdout. It never touches the file system
//! or the network: the parent reads the file and sends it. The parent kills it when the time limit
//! passes (the CPU limit is the backstop should the parent die) and maps every way it can end —
//! out of memory, over time, overflowed stack, crashed — to the reason that file failed.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use knowledge::config::IngestConfig;
use serde::{Deserialize, Serialize};

use parse::loaders::{self, Format, LoadedDocument, Section};

/// The subcommand the binary routes to [`serve_worker`].
pub const WORKER_COMMAND: &str = "parse-worker";

/// Bytes of the worker's stderr kept for the failure reason and the log.
const STDERR_KEPT: u64 = 16 * 1024;

/// What the parent tells the worker before the file's bytes.
#[derive(Serialize, Deserialize)]
struct Header {
    path: String,
    format: Format,
}

/// A loaded document on the wire: `content` (the bytes its hash covers) is left out when it is
/// the whole file, which the parent already holds.
#[derive(Serialize, Deserialize)]
struct WireDocument {
    source: String,
    title: String,
    sections: Vec<Section>,
    content: Option<String>,
    metadata: serde_json::Value,
}

#[derive(Serialize, Deserialize)]
enum Reply {
    Documents(Vec<WireDocument>),
    Failed(String),
}

/// How one run of the worker ended.
struct Finished {
    /// `None` when it was stopped for taking too long.
    status: Option<ExitStatus>,
    stdout: Vec<u8>,
    /// The head of its stderr.
    stderr: Vec<u8>,
}

/// The limits files are parsed under, and how to start the worker.
#[derive(Debug, Clone)]
pub struct Sandbox {
    timeout: Duration,
    memory_bytes: u64,
}

impl Sandbox {
    pub fn new(config: &IngestConfig) -> Self {
        Self {
            timeout: Duration::from_secs(config.parse_timeout_secs),
            memory_bytes: config.parse_memory_mb.saturating_mul(1024 * 1024),
        }
    }

    /// Parses one file in a worker process. Blocks until the worker answers or is stopped; the
    /// error is the reason the file failed, fit to show to whoever ingested it.
    pub fn load(
        &self,
        path: &Path,
        format: Format,
        bytes: &[u8],
    ) -> Result<Vec<LoadedDocument>, String> {
        let mut header = serde_json::to_vec(&Header {
            path: path.to_string_lossy().into_owned(),
            format,
        })
        .map_err(|e| format!("cannot describe the file to the parser: {e}"))?;
        header.push(b'\n');
        let finished = self.run(&header, bytes)?;
        let Some(status) = finished.status else {
            return Err(self.over_time());
        };
        if !status.success() {
            return Err(self.crash_reason(status, &finished.stderr));
        }
        match serde_json::from_slice::<Reply>(&finished.stdout) {
            Ok(Reply::Documents(docs)) => Ok(docs
                .into_iter()
                .map(|d| LoadedDocument {
                    source: d.source,
                    title: d.title,
                    sections: d.sections,
                    content: d.content.map_or_else(|| bytes.to_vec(), String::into_bytes),
                    metadata: d.metadata,
                })
                .collect()),
            Ok(Reply::Failed(reason)) => Err(reason),
            Err(e) => {
                tracing::warn!(error = %e, "the parser worker's answer is unreadable");
                Err("the parser's answer was unreadable".into())
            }
        }
    }

    /// Runs the worker on one request.
    fn run(&self, header: &[u8], bytes: &[u8]) -> Result<Finished, String> {
        let program = std::env::current_exe()
            .map_err(|e| format!("cannot find the lariat binary to parse with: {e}"))?;
        // The CPU limit only backs the wall-clock one up (should this process die first).
        let cpu_seconds = self.timeout.as_secs().saturating_add(1);
        let mut command = Command::new(program);
        // Nothing of this process's environment (credentials included) reaches the parser but
        // the test hook that can stop it.
        command.env_clear();
        if let Some(point) = std::env::var_os(base::crashpoint::VARIABLE) {
            command.env(base::crashpoint::VARIABLE, point);
        }
        let mut child = command
            .arg(WORKER_COMMAND)
            .arg("--memory-bytes")
            .arg(self.memory_bytes.to_string())
            .arg("--cpu-seconds")
            .arg(cpu_seconds.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start the parser worker: {e}"))?;
        let (Some(mut stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            let _ = child.kill();
            let _ = child.wait();
            return Err("the parser worker has no pipes".into());
        };
        // The answer is never larger than what the worker may hold in memory.
        let stdout_cap = self.memory_bytes.saturating_add(1);
        let (done_tx, done_rx) = mpsc::channel();
        std::thread::scope(|scope| {
            scope.spawn(move || {
                // Fails with a broken pipe when the worker dies or is stopped mid-file: its exit
                // status tells why.
                let _ = stdin
                    .write_all(header)
                    .and_then(|()| stdin.write_all(bytes));
            });
            let errors = scope.spawn(move || {
                let mut stderr = stderr;
                let mut kept = Vec::new();
                let _ = (&mut stderr).take(STDERR_KEPT).read_to_end(&mut kept);
                let _ = std::io::copy(&mut stderr, &mut std::io::sink());
                kept
            });
            scope.spawn(move || {
                let mut out = Vec::new();
                let _ = stdout.take(stdout_cap).read_to_end(&mut out);
                let _ = done_tx.send(out);
            });
            let answer = done_rx.recv_timeout(self.timeout);
            let in_time = matches!(&answer, Ok(out) if (out.len() as u64) < stdout_cap);
            if !in_time {
                let _ = child.kill();
            }
            let status = child
                .wait()
                .map_err(|e| format!("lost the parser worker: {e}"))?;
            let stderr = errors.join().unwrap_or_default();
            match answer {
                Ok(stdout) if in_time => Ok(Finished {
                    status: Some(status),
                    stdout,
                    stderr,
                }),
                Ok(_) => Err("the parser's answer is larger than its memory limit".into()),
                Err(_) => Ok(Finished {
                    status: None,
                    stdout: Vec::new(),
                    stderr,
                }),
            }
        })
    }

    fn over_time(&self) -> String {
        format!(
            "parsing took longer than {} s and was stopped (ingest.parse_timeout_secs)",
            self.timeout.as_secs()
        )
    }

    fn crash_reason(&self, status: ExitStatus, stderr: &[u8]) -> String {
        let stderr = String::from_utf8_lossy(stderr);
        tracing::warn!(%status, stderr = %stderr.trim(), "the parser worker failed");
        // An allocation that aborts, or one std reports as an error (reading the request).
        if [
            "memory allocation of",
            "unable to allocate",
            "out of memory",
        ]
        .iter()
        .any(|sign| stderr.contains(sign))
        {
            format!(
                "parsing needed more than {} MiB of memory and was stopped (ingest.parse_memory_mb)",
                self.memory_bytes / (1024 * 1024)
            )
        } else if stderr.contains("overflowed its stack") {
            "the file is nested too deeply to parse (the parser overflowed its stack)".into()
        } else if is_cpu_limit(status) {
            self.over_time()
        } else if let Some(own) = stderr
            .lines()
            .find_map(|l| l.strip_prefix("parse-worker: "))
        {
            // the worker's own words (never the file's), for a request it could not serve
            format!("the parser worker failed: {}", own.trim())
        } else {
            format!("the parser crashed on this file ({status})")
        }
    }
}

/// SIGXCPU: the worker ran past its CPU limit.
fn is_cpu_limit(status: ExitStatus) -> bool {
    use std::os::unix::process::ExitStatusExt;
    status.signal() == Some(24)
}

/// The worker's side: limits itself, parses the one file on stdin and answers on stdout. Returns
/// the process exit code (0 with an answer written, 1 when the request itself was unusable).
pub fn serve_worker(memory_bytes: u64, cpu_seconds: u64) -> u8 {
    use rlimit::Resource;
    let limited = Resource::DATA
        .set(memory_bytes, memory_bytes)
        .and_then(|()| Resource::CPU.set(cpu_seconds, cpu_seconds.saturating_add(1)))
        // no core files of untrusted input, and nothing written to disk
        .and_then(|()| Resource::CORE.set(0, 0))
        .and_then(|()| Resource::FSIZE.set(0, 0));
    if let Err(e) = limited {
        eprintln!("parse-worker: cannot set its limits: {e}");
        return 1;
    }
    let mut request = Vec::new();
    if let Err(e) = std::io::stdin().lock().read_to_end(&mut request) {
        eprintln!("parse-worker: cannot read the request: {e}");
        return 1;
    }
    let Some(split) = request.iter().position(|&b| b == b'\n') else {
        eprintln!("parse-worker: the request has no header line");
        return 1;
    };
    let header: Header = match serde_json::from_slice(&request[..split]) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("parse-worker: bad header: {e}");
            return 1;
        }
    };
    base::crashpoint::reached(base::crashpoint::PARSE);
    let bytes = &request[split + 1..];
    let reply = match loaders::load(Path::new(&header.path), header.format, bytes) {
        Ok(docs) => docs
            .into_iter()
            .map(|d| {
                let content = if d.content == bytes {
                    None
                } else {
                    let record = String::from_utf8(d.content)
                        .map_err(|_| "a record's content is not UTF-8".to_owned())?;
                    Some(record)
                };
                Ok(WireDocument {
                    source: d.source,
                    title: d.title,
                    sections: d.sections,
                    content,
                    metadata: d.metadata,
                })
            })
            .collect::<Result<Vec<_>, String>>()
            .map_or_else(Reply::Failed, Reply::Documents),
        Err(e) => Reply::Failed(e.0),
    };
    let mut out = std::io::stdout().lock();
    let written = serde_json::to_writer(&mut out, &reply).map_err(std::io::Error::from);
    match written.and_then(|()| out.flush()) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("parse-worker: cannot answer: {e}");
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::ExitStatusExt;

    use super::*;

    #[test]
    fn a_failed_worker_is_explained_by_its_own_words_only() {
        let sandbox = Sandbox::new(&IngestConfig {
            parse_memory_mb: 64,
            ..IngestConfig::default()
        });
        let exit_1 = ExitStatus::from_raw(1 << 8);
        let reason = |stderr: &str| sandbox.crash_reason(exit_1, stderr.as_bytes());
        // std reports a failed allocation while reading the request as an error, not an abort
        let oom = reason("parse-worker: cannot read the request: out of memory\n");
        assert!(
            oom.contains("64 MiB") && oom.contains("parse_memory_mb"),
            "{oom}"
        );
        assert_eq!(
            reason("parse-worker: the request has no header line\n"),
            "the parser worker failed: the request has no header line"
        );
        // anything else on stderr may quote the file: it is logged, never shown
        let panic = reason("thread 'main' panicked at <script>alert(1)</script>\n");
        assert_eq!(panic, "the parser crashed on this file (exit status: 1)");
        let over = sandbox.crash_reason(ExitStatus::from_raw(24), b"");
        assert!(over.contains("parse_timeout_secs"), "{over}");
    }
}
