#!/usr/bin/env python3
"""Validates the deployment files offline (no container engine runs here): the Dockerfile with
hadolint, the systemd unit with `systemd-analyze verify`, the compose file against the Compose specification's JSON schema (vendored in
check-jsonschema), every kustomize overlay rendered with `kubectl kustomize` and validated
against the Kubernetes schemas (kubernetes-validate, strict), and Lariat's own rules on top:
non-root, read-only root filesystems, no privilege escalation, resources, probes, the
migration before the servers.

    python3 scripts/validate_deploy.py [--root REPO]

Exits 1 with one line per problem; prints what it checked otherwise.
"""

import argparse
import json
import pathlib
import subprocess
import sys
import tempfile

import yaml

problems: list[str] = []


def problem(where: str, what: str) -> None:
    problems.append(f"{where}: {what}")


def run(where: str, args: list[str], **kw) -> subprocess.CompletedProcess:
    done = subprocess.run(args, capture_output=True, text=True, **kw)
    if done.returncode != 0:
        problem(where, f"{' '.join(args[:2])} failed:\n{done.stdout}{done.stderr}".rstrip())
    return done


def dockerfile(root: pathlib.Path) -> None:
    path = root / "deploy/docker/Dockerfile"
    run(str(path), ["hadolint", "--failure-threshold", "info", str(path)])
    text = path.read_text()
    if "scripts/setup-assets.sh" not in text:
        problem(str(path), "the assets are fetched and checked as `make setup` does")
    runtime = text[text.rindex("\nFROM "):]
    for needle, why in [
        ("\nHEALTHCHECK ", "a HEALTHCHECK"),
        ("\nUSER 10001", "the unprivileged user 10001"),
        ("\nVOLUME ", "the data dir on a volume"),
    ]:
        if needle not in runtime:
            problem(str(path), f"the runtime image needs {why}")


def compose(root: pathlib.Path) -> None:
    path = root / "deploy/compose/compose.yaml"
    run(str(path), ["check-jsonschema", "--builtin-schema", "vendor.compose-spec", str(path)])
    doc = yaml.safe_load(path.read_text())
    services = doc.get("services", {})
    servers = [n for n, s in services.items() if s.get("command") == ["serve"]]
    if len(servers) < 2:
        problem(str(path), f"expected two `lariat serve`, found {servers}")
    for name in servers + ["migrate"]:
        s = services.get(name, {})
        where = f"{path}: service {name}"
        if not s.get("read_only"):
            problem(where, "read_only root filesystem")
        if "no-new-privileges:true" not in s.get("security_opt", []):
            problem(where, "security_opt no-new-privileges:true")
        if s.get("cap_drop") != ["ALL"]:
            problem(where, "cap_drop [ALL]")
        env = s.get("environment", {})
        for secret in ("LARIAT_DATABASE_URL", "LARIAT_AUTH__JWT_SECRET"):
            if secret in env:
                problem(where, f"{secret} is a secret: give it as {secret}_FILE")
        if name != "migrate":
            migrate = s.get("depends_on", {}).get("migrate", {})
            if migrate.get("condition") != "service_completed_successfully":
                problem(where, "starts after the migration completed")
    if "qdrant" not in services or services["qdrant"].get("profiles") != ["qdrant"]:
        problem(str(path), "Qdrant is optional, behind the profile `qdrant`")


def systemd(root: pathlib.Path) -> None:
    """`systemd-analyze verify` on the unit, its binary standing in as /bin/true: any line it
    prints (an unknown key, a value it cannot parse) is a problem."""
    path = root / "deploy/systemd/lariat.service"
    with tempfile.TemporaryDirectory() as d:
        fake = pathlib.Path(d) / "lariat"
        fake.symlink_to("/bin/true")
        unit = pathlib.Path(d) / "lariat.service"
        unit.write_text(path.read_text().replace("/usr/local/bin/lariat", str(fake)))
        done = run(str(path), ["systemd-analyze", "verify", "--man=no", str(unit)])
        said = (done.stdout + done.stderr).strip()
        if said:
            problem(str(path), said.replace(str(unit), "lariat.service"))


def pod_spec(obj: dict) -> dict | None:
    if obj["kind"] in ("Deployment", "Job"):
        return obj["spec"]["template"]["spec"]
    return None


def kubernetes(root: pathlib.Path) -> None:
    overlays = sorted((root / "deploy/kubernetes/overlays").iterdir())
    if not overlays:
        problem("deploy/kubernetes/overlays", "no overlays")
    for overlay in overlays:
        where = str(overlay.relative_to(root))
        rendered = run(where, ["kubectl", "kustomize", str(overlay)])
        if rendered.returncode != 0:
            continue
        with tempfile.NamedTemporaryFile("w", suffix=".yaml") as f:
            f.write(rendered.stdout)
            f.flush()
            run(where, ["kubernetes-validate", "--strict", "--quiet", f.name])
        objects = [o for o in yaml.safe_load_all(rendered.stdout) if o]
        kinds = {o["kind"] for o in objects}
        for kind in ("Deployment", "Service", "Ingress", "ConfigMap", "Job",
                     "HorizontalPodAutoscaler", "PodDisruptionBudget", "NetworkPolicy"):
            if kind not in kinds:
                problem(where, f"renders no {kind}")
        for obj in objects:
            spec = pod_spec(obj)
            if spec is None:
                continue
            name = f"{where}: {obj['kind']}/{obj['metadata']['name']}"
            pod = spec.get("securityContext", {})
            if pod.get("runAsNonRoot") is not True:
                problem(name, "runAsNonRoot: true")
            if pod.get("seccompProfile", {}).get("type") != "RuntimeDefault":
                problem(name, "seccompProfile RuntimeDefault")
            for c in spec["containers"]:
                cname = f"{name} container {c['name']}"
                sc = c.get("securityContext", {})
                if sc.get("allowPrivilegeEscalation") is not False:
                    problem(cname, "allowPrivilegeEscalation: false")
                if sc.get("readOnlyRootFilesystem") is not True:
                    problem(cname, "readOnlyRootFilesystem: true")
                if sc.get("capabilities", {}).get("drop") != ["ALL"]:
                    problem(cname, "capabilities drop [ALL]")
                res = c.get("resources", {})
                for part in ("requests", "limits"):
                    for r in ("cpu", "memory"):
                        if r not in res.get(part, {}):
                            problem(cname, f"resources.{part}.{r}")
                if obj["kind"] == "Deployment":
                    for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
                        if c.get(probe, {}).get("httpGet", {}).get("path") != path:
                            problem(cname, f"{probe} on {path}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=pathlib.Path,
                        default=pathlib.Path(__file__).resolve().parent.parent)
    root = parser.parse_args().root.resolve()
    dockerfile(root)
    compose(root)
    systemd(root)
    kubernetes(root)
    if problems:
        print("\n".join(problems), file=sys.stderr)
        return 1
    print(json.dumps({"valid": ["deploy/docker/Dockerfile", "deploy/compose/compose.yaml",
                                "deploy/systemd/lariat.service"] + [
        str(p.relative_to(root)) for p in sorted((root / "deploy/kubernetes/overlays").iterdir())]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
