//! The deployment files (`deploy/`) validated offline by `scripts/validate_deploy.py`: hadolint,
//! the Compose specification's schema, `systemd-analyze verify`, every kustomize overlay
//! rendered and checked against the Kubernetes schemas, and Lariat's own rules. No container
//! engine runs here: the image is linted and the manifests validated, not run.

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Runs the validator on the repository at `root`: its exit code and what it printed.
fn validate(root: &Path) -> (i32, String) {
    let out = Command::new("python3")
        .arg(repo().join("scripts/validate_deploy.py"))
        .arg("--root")
        .arg(root)
        .output()
        .expect("python3 runs");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), said)
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[test]
fn the_deploy_files_validate() {
    let (code, said) = validate(&repo());
    assert_eq!(code, 0, "{said}");
    for file in [
        "deploy/docker/Dockerfile",
        "deploy/compose/compose.yaml",
        "deploy/systemd/lariat.service",
        "deploy/kubernetes/overlays/small",
        "deploy/kubernetes/overlays/production",
    ] {
        assert!(said.contains(file), "{file}: {said}");
    }
}

/// Each kind of mistake is caught, by the tool that should catch it.
#[test]
fn broken_deploy_files_are_refused() {
    let cases: &[(&str, &str, &str, &str)] = &[
        // (file, text, replaced by, what the refusal says)
        (
            "docker/Dockerfile",
            "FROM debian:${DEBIAN_RELEASE}-slim",
            "FROM debian:latest",
            "DL3007",
        ),
        ("docker/Dockerfile", "\nHEALTHCHECK ", "\n# ", "HEALTHCHECK"),
        ("docker/Dockerfile", "\nUSER 10001:10001", "\n", "10001"),
        (
            "compose/compose.yaml",
            "  read_only: true",
            "  read_only: false",
            "read_only",
        ),
        (
            "compose/compose.yaml",
            "    restart: \"no\"",
            "    restart: 3",
            "check-jsonschema",
        ),
        (
            "compose/compose.yaml",
            "condition: service_completed_successfully",
            "condition: service_started",
            "migration completed",
        ),
        (
            "systemd/lariat.service",
            "NoNewPrivileges=true",
            "NoNewPrivileges=maybe",
            "Failed to parse",
        ),
        (
            "kubernetes/base/deployment.yaml",
            "readOnlyRootFilesystem: true",
            "readOnlyRootFilesystem: false",
            "readOnlyRootFilesystem",
        ),
        (
            "kubernetes/base/deployment.yaml",
            "  replicas: 2",
            "  replicas: two",
            "kubernetes-validate",
        ),
        (
            "kubernetes/base/deployment.yaml",
            "path: /readyz",
            "path: /healthz",
            "readinessProbe on /readyz",
        ),
        (
            "kubernetes/base/kustomization.yaml",
            "  - pdb.yaml\n",
            "",
            "renders no PodDisruptionBudget",
        ),
        (
            "kubernetes/overlays/small/kustomization.yaml",
            "../../base",
            "../../nowhere",
            "kubectl kustomize",
        ),
    ];
    for (file, text, by, says) in cases {
        let root = tempfile::tempdir().unwrap();
        copy_tree(&repo().join("deploy"), &root.path().join("deploy"));
        let path = root.path().join("deploy").join(file);
        let original = std::fs::read_to_string(&path).unwrap();
        assert!(original.contains(text), "{file} no longer holds {text:?}");
        std::fs::write(&path, original.replacen(text, by, 1)).unwrap();
        let (code, said) = validate(root.path());
        assert_eq!(code, 1, "{file}: {text:?} → {by:?} passed: {said}");
        assert!(said.contains(says), "{file}: {text:?} → {by:?}: {said}");
    }
}

/// What the image and the manifests run besides `serve`: `lariat migrate` prepares a shared
/// deployment once (and again, harmlessly), its secrets read from files as containers mount
/// them; `lariat probe` is the image's health check.
#[tokio::test]
async fn migrate_prepares_a_shared_deployment_and_probe_checks_a_server() {
    use crate::serve::Server;
    use crate::support::Lariat;

    let pg = lariat_tests::PgVectorServer::start();
    let db = pg.database().await;
    let secrets = tempfile::tempdir().unwrap();
    let url_file = secrets.path().join("database_url");
    std::fs::write(&url_file, format!("{}\n", db.url)).unwrap();
    let key_file = secrets.path().join("jwt_secret");
    std::fs::write(&key_file, "one signing key for every server\n").unwrap();
    let l = Lariat::new()
        .with_env("LARIAT_DATABASE_URL_FILE", url_file.to_str().unwrap())
        .with_env("LARIAT_AUTH__JWT_SECRET_FILE", key_file.to_str().unwrap())
        .with_env("LARIAT_RETRIEVAL__VECTOR_STORE", "pgvector")
        .with_env("LARIAT_RETRIEVAL__LEXICAL_STORE", "database");
    let l = tokio::task::spawn_blocking(move || {
        for _ in 0..2 {
            let said = l.expect(0, &["migrate"]);
            assert_eq!(
                said.trim(),
                "ready: the database (postgres), the vector store (pgvector) and the lexical index (database)"
            );
        }
        l
    })
    .await
    .unwrap();
    let server = Server::start(&l);
    let base = server.base.clone();
    let l = tokio::task::spawn_blocking(move || {
        l.expect(0, &["probe", &format!("{base}/healthz")]);
        l.expect(0, &["probe", &format!("{base}/readyz")]);
        let said = l.stderr_of(1, &["probe", &format!("{base}/no-such-page")]);
        assert!(said.contains("404"), "{said}");
        let said = l.stderr_of(1, &["probe", "http://127.0.0.1:1/healthz"]);
        assert!(said.contains("probe: http://127.0.0.1:1/healthz"), "{said}");
        let said = l.stderr_of(2, &["probe", "ftp://127.0.0.1/x"]);
        assert!(said.contains("is not an http:// or https:// URL"), "{said}");
        l
    })
    .await
    .unwrap();
    drop(server);
    // a secret file that cannot be read stops every command, naming the key and not the value
    let l = l.with_env("LARIAT_AUTH__JWT_SECRET_FILE", "/nonexistent/jwt");
    let said = tokio::task::spawn_blocking(move || l.stderr_of(2, &["migrate"]))
        .await
        .unwrap();
    assert!(
        said.contains("auth.jwt_secret") && said.contains("/nonexistent/jwt"),
        "{said}"
    );
    db.drop_db().await;
}
