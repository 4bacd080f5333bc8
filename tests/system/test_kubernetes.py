"""deploy/kubernetes/: the Kubernetes schemas (offline, kubernetes-validate's bundled ones), and
consistency with the service: its commands, its settings, its routes, and the production shape
(non-root, read-only root filesystem, probes, grace periods, resources)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click
import kubernetes_validate
import pytest
import yaml

from service.app import create_app
from service.cli import main
from service.settings import Settings
from tests.support.deployfiles import ROOT, setting_names

KUBE = ROOT / "deploy" / "kubernetes"
PGBOUNCER = "recordings-pgbouncer"
# The Kubernetes version the manifests are checked against (those in use are 1.30 and later).
VERSION = "1.30.0"
SECRETS = {
    "RECORDINGS_DATABASE_URL",
    "RECORDINGS_DATABASE_DIRECT_URL",
    "RECORDINGS_S3_ACCESS_KEY_ID",
    "RECORDINGS_S3_SECRET_ACCESS_KEY",
    "RECORDINGS_INGEST_TOKEN",
    "RECORDINGS_SECRET_KEY",
    "RECORDINGS_METRICS_TOKEN",
}


def documents() -> Iterator[tuple[Path, dict[str, Any]]]:
    for path in sorted(KUBE.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                yield path, doc


def resources() -> dict[tuple[str, str], dict[str, Any]]:
    found = {}
    for _, doc in documents():
        if doc["kind"] == "Kustomization":
            continue
        key = (doc["kind"], doc["metadata"]["name"])
        assert key not in found, key
        found[key] = doc
    return found


def pod_specs() -> dict[str, dict[str, Any]]:
    """The pods of the service's own image (PgBouncer's is checked on its own)."""
    made = resources()
    return {
        name: doc["spec"]["template"]["spec"]
        for (kind, name), doc in made.items()
        if kind in ("Deployment", "Job") and name != PGBOUNCER
    }


def test_every_manifest_matches_the_kubernetes_schemas() -> None:
    # kubernetes-validate carries the schemas: no network is used.
    checked = 0
    for _path, doc in documents():
        if doc["kind"] == "Kustomization":
            continue
        kubernetes_validate.validate(doc, VERSION, strict=True)
        checked += 1
    assert checked >= 10


def test_the_schema_check_can_fail() -> None:
    doc = resources()[("Deployment", "recordings-api")]
    broken = yaml.safe_load(yaml.safe_dump(doc))
    broken["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, VERSION, strict=True)


def test_the_kustomization_lists_every_manifest_but_the_example_secret() -> None:
    kustomization = yaml.safe_load((KUBE / "kustomization.yaml").read_text())
    files = {p.name for p in KUBE.glob("*.yaml")} - {"kustomization.yaml", "secret.example.yaml"}
    assert set(kustomization["resources"]) == files
    assert "secret.example.yaml" not in kustomization["resources"]


def test_the_shape() -> None:
    made = resources()
    kinds = {kind for kind, _ in made}
    assert {
        "Deployment",
        "Job",
        "Service",
        "Ingress",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "ConfigMap",
        "Secret",
    } <= kinds
    assert made[("Deployment", "recordings-api")]["spec"]["replicas"] >= 2
    hpa = made[("HorizontalPodAutoscaler", "recordings-api")]["spec"]
    assert hpa["scaleTargetRef"]["name"] == "recordings-api" and hpa["minReplicas"] >= 2
    assert [m["resource"]["name"] for m in hpa["metrics"]] == ["cpu"]
    for component in ("api", "worker"):
        pdb = made[("PodDisruptionBudget", f"recordings-{component}")]["spec"]
        deployment = made[("Deployment", f"recordings-{component}")]["spec"]
        assert pdb["selector"]["matchLabels"] == deployment["selector"]["matchLabels"]
        labels = deployment["template"]["metadata"]["labels"]
        assert deployment["selector"]["matchLabels"].items() <= labels.items()
    service = made[("Service", "recordings-api")]["spec"]
    api_labels = made[("Deployment", "recordings-api")]["spec"]["template"]["metadata"]["labels"]
    assert service["selector"].items() <= api_labels.items()


def argv_of(container: dict[str, Any]) -> list[str]:
    argv = [*container.get("command", []), *container.get("args", [])]
    if argv[:2] == ["/usr/bin/tini", "--"]:
        argv = argv[2:]
    return argv


def test_commands_are_commands_of_the_cli() -> None:
    used = set()
    for name, spec in pod_specs().items():
        for container in spec["containers"]:
            argv = argv_of(container)
            assert argv[0] == "recordings", name
            command: click.Command = main
            args = argv[1:]
            while isinstance(command, click.Group):
                assert args and args[0] in command.commands, (name, argv)
                command, args = command.commands[args[0]], args[1:]
            # Parsing fails on an unknown option or a bad value.
            with click.Context(command) as ctx:
                command.parse_args(ctx, list(args))
            used.add(command.name)
    assert used == {"serve", "worker", "migrate"}


def env_names(container: dict[str, Any]) -> set[str]:
    made = resources()
    names = {item["name"] for item in container.get("env", [])}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            names |= set(made[("ConfigMap", source["configMapRef"]["name"])]["data"])
        if "secretRef" in source:
            names |= set(made[("Secret", source["secretRef"]["name"])]["stringData"])
    return names


def test_every_setting_is_wired_to_every_container() -> None:
    made = resources()
    config = set(made[("ConfigMap", "recordings")]["data"])
    secret = set(made[("Secret", "recordings")]["stringData"])
    assert secret == SECRETS
    assert config | secret == setting_names(), "a setting is missing, or a name is no setting"
    assert not config & secret
    for name, spec in pod_specs().items():
        for container in spec["containers"]:
            names = {n for n in env_names(container) if n.startswith("RECORDINGS_")}
            assert names == setting_names(), name


def test_the_settings_given_are_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    made = resources()
    values = {**made[("ConfigMap", "recordings")]["data"]}
    values.update(made[("Secret", "recordings")]["stringData"])
    assert all(isinstance(v, str) for v in values.values()), "ConfigMap values are strings"
    for key in list(os.environ):
        if key.startswith("RECORDINGS_"):
            monkeypatch.delenv(key)
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.retention_days is None and settings.worker_metrics_port == 9100
    assert settings.tmp_dir == "/var/tmp/recordings"
    # TLS to PostgreSQL itself; PgBouncer is in the cluster, where the pool's URL points.
    assert settings.secret_key is not None and "sslmode=" in settings.session_database_url
    assert urlsplit(settings.database_url).hostname == PGBOUNCER
    assert settings.database_pooled


def test_pgbouncer_pools_transactions_and_the_budget_fits_under_max_connections(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    made = resources()
    values = {**made[("ConfigMap", "recordings")]["data"]}
    values.update(made[("Secret", "recordings")]["stringData"])
    for key in list(os.environ):
        if key.startswith("RECORDINGS_"):
            monkeypatch.delenv(key)
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    bouncer = made[("Deployment", PGBOUNCER)]
    container = bouncer["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    source = next(e for e in container["env"] if e["name"] == "DATABASE_URL")
    assert source["valueFrom"]["secretKeyRef"] == {
        "name": "recordings",
        "key": "RECORDINGS_DATABASE_DIRECT_URL",
    }
    assert env["POOL_MODE"] == "transaction"
    port = made[("Service", PGBOUNCER)]["spec"]["ports"][0]["port"]
    assert urlsplit(settings.database_url).port == port == int(env["LISTEN_PORT"])
    api_max = made[("HorizontalPodAutoscaler", "recordings-api")]["spec"]["maxReplicas"]
    workers = made[("Deployment", "recordings-worker")]["spec"]["replicas"]
    bouncers = bouncer["spec"]["replicas"]
    # Every pod's pool full at once, all on one PgBouncer: still under its client limit.
    assert (api_max + workers) * settings.database_pool_size <= int(env["MAX_CLIENT_CONN"])
    # PostgreSQL's connections: PgBouncer's servers, each pod's session pool (one per ffmpeg run
    # and the retention pass), the workers' two LISTENs, and the migrate Job.
    sessions = settings.ffmpeg_max_processes + 1
    direct = (
        bouncers * int(env["MAX_DB_CONNECTIONS"])
        + api_max * sessions
        + workers * (sessions + 2)
        + 1
    )
    # PostgreSQL's default max_connections (100), less the 3 reserved for superusers.
    assert direct <= 97, direct


def public_routes() -> set[str]:
    app = create_app(Settings(_env_file=None))  # type: ignore[call-arg]
    paths = set()
    for route in app.routes:
        router = getattr(route, "original_router", None)
        inner = router.routes if router is not None else [route]
        paths |= {str(getattr(r, "path", "")) for r in inner}
    return {p for p in paths if p}


def test_probes_and_scrapes_point_at_real_routes_and_ports() -> None:
    routes = public_routes()
    assert {"/readyz", "/healthz", "/metrics"} <= routes
    api = pod_specs()["recordings-api"]["containers"][0]
    port = int(argv_of(api)[argv_of(api).index("--port") + 1])
    ports = {p["name"]: p["containerPort"] for p in api["ports"]}
    assert ports["http"] == port
    assert api["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert api["livenessProbe"]["httpGet"]["path"] == "/healthz"
    for probe in ("readinessProbe", "livenessProbe"):
        assert api[probe]["httpGet"]["port"] in ("http", port)
    made = resources()
    api_pod = made[("Deployment", "recordings-api")]["spec"]["template"]["metadata"]
    assert api_pod["annotations"]["prometheus.io/port"] == str(port)
    assert api_pod["annotations"]["prometheus.io/path"] in routes
    worker_pod = made[("Deployment", "recordings-worker")]["spec"]["template"]
    metrics_port = int(made[("ConfigMap", "recordings")]["data"]["RECORDINGS_WORKER_METRICS_PORT"])
    assert worker_pod["metadata"]["annotations"]["prometheus.io/port"] == str(metrics_port)
    worker = worker_pod["spec"]["containers"][0]
    assert {p["containerPort"] for p in worker["ports"]} == {metrics_port}


def test_pods_run_as_non_root_on_a_read_only_root() -> None:
    for name, spec in pod_specs().items():
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        assert spec["securityContext"]["runAsUser"] != 0, name
        assert spec.get("automountServiceAccountToken") is False, name
        volumes = {v["name"]: v for v in spec["volumes"]}
        for container in spec["containers"]:
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True, name
            assert context["allowPrivilegeEscalation"] is False, name
            assert context["capabilities"]["drop"] == ["ALL"], name
            mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
            assert "/tmp" in mounts, name
            # Every writable place is an emptyDir.
            assert all("emptyDir" in volumes[v] for v in mounts.values()), name
            if container["name"] != "migrate":
                assert mounts.get("/var/tmp/recordings"), name
    tmp_dir = resources()[("ConfigMap", "recordings")]["data"]["RECORDINGS_TMP_DIR"]
    assert tmp_dir == "/var/tmp/recordings"


def test_grace_periods_and_resources_fit_the_work() -> None:
    made = resources()
    config = made[("ConfigMap", "recordings")]["data"]
    specs = pod_specs()
    # uvicorn's graceful shutdown is 30 s (`recordings serve`), after a preStop pause.
    api = specs["recordings-api"]
    pause = api["containers"][0]["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert api["terminationGracePeriodSeconds"] > 30 + pause
    # The worker lets transcodes under way finish: each takes up to RECORDINGS_FFMPEG_TIMEOUT.
    worker = specs["recordings-worker"]
    assert worker["terminationGracePeriodSeconds"] > float(config["RECORDINGS_FFMPEG_TIMEOUT"])
    # One uvicorn process uses about a core at full load; a worker one per ffmpeg process.
    api_resources = api["containers"][0]["resources"]
    assert cores(api_resources["requests"]["cpu"]) >= 1
    assert cores(api_resources["limits"]["cpu"]) >= cores(api_resources["requests"]["cpu"])
    worker_resources = worker["containers"][0]["resources"]
    assert cores(worker_resources["requests"]["cpu"]) >= int(
        config["RECORDINGS_FFMPEG_MAX_PROCESSES"]
    )
    for spec in specs.values():
        for container in spec["containers"]:
            assert {"cpu", "memory"} <= set(container["resources"]["requests"])
            assert {"cpu", "memory"} <= set(container["resources"]["limits"])


def cores(value: str) -> float:
    return float(value[:-1]) / 1000 if value.endswith("m") else float(value)


def test_the_ingress_streams_and_hides_the_internal_routes() -> None:
    made = resources()
    public = made[("Ingress", "recordings")]
    ingest = made[("Ingress", "recordings-ingest")]
    routes = public_routes()
    for ingress in (public, ingest):
        notes = ingress["metadata"]["annotations"]
        assert notes["nginx.ingress.kubernetes.io/proxy-buffering"] == "off"
        assert notes["nginx.ingress.kubernetes.io/proxy-request-buffering"] == "off"
        assert "nginx.ingress.kubernetes.io/proxy-body-size" in notes
        assert int(notes["nginx.ingress.kubernetes.io/proxy-read-timeout"]) >= 60
    paths = [p for rule in public["spec"]["rules"] for p in rule["http"]["paths"]]
    for path in paths:
        # Each routes somewhere the app answers, and nothing reaches /internal/ or /metrics.
        prefix = path["path"]
        assert any(r == prefix or r.startswith(prefix) for r in routes), prefix
        for hidden in ("/internal/", "/metrics"):
            if path["pathType"] == "Exact":
                assert prefix != hidden
            else:
                assert not hidden.startswith(prefix), prefix
    ingest_paths = [p["path"] for rule in ingest["spec"]["rules"] for p in rule["http"]["paths"]]
    assert ingest_paths == ["/internal/"]
    assert "whitelist-source-range" in " ".join(ingest["metadata"]["annotations"])
    config = made[("ConfigMap", "recordings")]["data"]
    body = ingest["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-body-size"]
    assert int(body.rstrip("m")) * 1024 * 1024 >= int(config["RECORDINGS_MAX_UPLOAD_BYTES"])
