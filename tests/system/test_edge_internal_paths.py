"""No spelling of an internal path reaches it through the edge: a real nginx running
deploy/nginx.conf in front of a real service, asked for /metrics every way a client can write
it (the service answers /metrics only at its canonical spelling, so a spelling the edge missed
would still be refused there)."""

from __future__ import annotations

import http.client
from pathlib import Path

import pytest
import yaml

from tests.support.nginx import nginx_proxy
from tests.support.stack import ServerThread

SPELLINGS = [
    "/metrics",
    "/metrics/",
    "/metrics//",
    "/metrics%2F",
    "/metrics%2f",
    "/metrics%2F%2F",
    "//metrics",
    "///metrics/",
    "/METRICS",
    "/Metrics/",
    "/%6detrics",
    "/%6Detrics%2F",
    "/./metrics",
    "/x/../metrics",
    "/x/..%2Fmetrics",
    "/metrics/.",
    "/metrics?x=1",
    "/metrics/?x=1",
    "/2010-04-01/../metrics",
    "/2010-04-01/%2e%2e/metrics",
]
PROMETHEUS = b"# HELP"


@pytest.mark.parametrize("target", SPELLINGS)
def test_no_spelling_of_metrics_passes_the_edge(
    target: str, server: ServerThread, tmp_path: Path
) -> None:
    with nginx_proxy(tmp_path, [server.port, server.port]) as proxy:
        status, _, body = proxy.request("GET", target)
        assert PROMETHEUS not in body, (target, status)
        assert status in (400, 403, 404), (target, status)
        # The edge still serves the API and the liveness check.
        assert proxy.request("GET", "/healthz")[0] == 200


def test_the_service_answers_metrics_at_its_canonical_spelling_only(
    server: ServerThread,
) -> None:
    def get(target: str) -> tuple[int, bytes]:
        # http.client sends the target as written (httpx would read //metrics as a host).
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        try:
            conn.request("GET", target)
            answer = conn.getresponse()
            return answer.status, answer.read()
        finally:
            conn.close()

    assert get("/metrics")[0] == 200
    for target in ("/metrics/", "/metrics//", "//metrics", "///metrics/", "/metrics%2F"):
        status, body = get(target)
        assert status == 404, target
        assert PROMETHEUS not in body


def test_the_kubernetes_public_ingress_routes_no_internal_path() -> None:
    ingress = Path(__file__).parents[2] / "deploy" / "kubernetes" / "ingress.yaml"
    public = [
        doc
        for doc in yaml.safe_load_all(ingress.read_text())
        if doc["spec"]["ingressClassName"] == "nginx"
    ]
    assert public
    for doc in public:
        for rule in doc["spec"]["rules"]:
            for entry in rule["http"]["paths"]:
                path, kind = entry["path"], entry["pathType"]
                for internal in ("/metrics", "/metrics/", "/internal/", "/readyz"):
                    reached = internal == path if kind == "Exact" else internal.startswith(path)
                    assert not reached, (path, kind, internal)
