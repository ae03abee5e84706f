"""What a platform engineer relies on in charts/switchboard, checked on the rendered objects.

The chart is rendered by Helm's engine (see render.py) for several value sets; every object
is validated against the Kubernetes OpenAPI schemas (kubernetes-validate, strict mode), and
the conventions of the deployment are asserted on the objects themselves.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import helm_python as helm
import kubernetes_validate
import pytest
import yaml

from services.runtime import registry

from .render import CHART, RELEASE, components, load_chart, main, merge_values, render

VALUES_DIR = Path(__file__).parent / "values"

# The Kubernetes version .Capabilities reports in Helm v4.2's offline rendering; the
# kubernetes-validate release in uv.lock ships its schemas.
KUBERNETES_VERSION = "1.36.0"

# Custom resources kubernetes-validate has no schema for: skipped by kind, explicitly.
CRD_KINDS = {
    ("postgresql.cnpg.io/v1", "Cluster"),
    ("postgresql.cnpg.io/v1", "Database"),
    ("monitoring.coreos.com/v1", "ServiceMonitor"),
}

GRPC_SERVICES = list(registry.SERVICE_NAMES)
ALL_SERVICES = [c.name for c in registry.COMPONENTS]
STANDARD_LABELS = [
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/component",
    "app.kubernetes.io/part-of",
    "app.kubernetes.io/managed-by",
    "app.kubernetes.io/version",
    "helm.sh/chart",
]

VALUE_SETS: dict[str, list[Path]] = {
    "defaults": [],
    "production": [VALUES_DIR / "production.yaml"],
    "external": [VALUES_DIR / "external.yaml"],
}
REVISION = 7


class Rendered:
    """The objects of one render, with the values that produced them."""

    def __init__(self, name: str, files: list[Path]) -> None:
        self.name = name
        self.user_values = merge_values(files)
        with load_chart() as chart:
            self.values = chart.merge_values(self.user_values)
        self.components = components(self.values)
        self.objects = render(files, revision=REVISION)
        self.fullname = RELEASE  # the release name contains the chart name

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [o for o in self.objects if o["kind"] == kind]

    def get(self, kind: str, name: str) -> dict[str, Any]:
        found = [o for o in self.of_kind(kind) if o["metadata"]["name"] == name]
        assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
        return found[0]

    def enabled(self) -> list[str]:
        return [n for n in ALL_SERVICES if self.components[n]["enabled"]]

    def disabled(self) -> list[str]:
        return [n for n in ALL_SERVICES if not self.components[n]["enabled"]]

    def pod_specs(self) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
        """(object, pod spec) of every Deployment, Job and Pod."""
        for obj in self.objects:
            if obj["kind"] in ("Deployment", "Job"):
                yield obj, obj["spec"]["template"]["spec"]
            elif obj["kind"] == "Pod":
                yield obj, obj["spec"]

    def containers(self) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
        for obj, spec in self.pod_specs():
            for container in spec.get("initContainers", []) + spec["containers"]:
                yield obj, container


_CACHE: dict[str, Rendered] = {}


@pytest.fixture(params=list(VALUE_SETS), scope="module")
def rendered(request: pytest.FixtureRequest) -> Rendered:
    name = request.param
    if name not in _CACHE:
        _CACHE[name] = Rendered(name, VALUE_SETS[name])
    return _CACHE[name]


def env_of(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container.get("env", [])}


def labels_match(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


# --- Kubernetes schemas ----------------------------------------------------------------


def test_every_object_is_valid_kubernetes(rendered: Rendered) -> None:
    skipped = []
    for obj in rendered.objects:
        key = (obj["apiVersion"], obj["kind"])
        if key in CRD_KINDS:
            skipped.append(key)
            continue
        where = f"{obj['kind']}/{obj['metadata']['name']}"
        try:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            path = ".".join(str(p) for p in exc.path)
            pytest.fail(f"{rendered.name}: {where} is invalid at {path}: {exc.message}")
        except kubernetes_validate.SchemaNotFoundError as exc:
            pytest.fail(f"{rendered.name}: {where}: {exc.message} (add it to CRD_KINDS?)")
    # Custom resources appear exactly when CloudNativePG or the ServiceMonitor is on.
    expected = set()
    if rendered.values["postgresql"]["cnpg"]["enabled"]:
        expected |= {("postgresql.cnpg.io/v1", "Cluster"), ("postgresql.cnpg.io/v1", "Database")}
    if rendered.values["metrics"]["serviceMonitor"]["enabled"]:
        expected.add(("monitoring.coreos.com/v1", "ServiceMonitor"))
    assert set(skipped) == expected


def test_every_object_is_namespaced_in_the_release_namespace(rendered: Rendered) -> None:
    for obj in rendered.objects:
        assert obj["metadata"].get("namespace") == "switchboard", obj["metadata"]["name"]


def test_object_names_are_unique_per_kind(rendered: Rendered) -> None:
    seen = [(o["kind"], o["metadata"]["name"]) for o in rendered.objects]
    assert len(seen) == len(set(seen))


# --- components ------------------------------------------------------------------------


def test_every_enabled_service_has_deployment_service_and_pdb(rendered: Rendered) -> None:
    for name in rendered.enabled():
        full = f"{rendered.fullname}-{name}"
        deployment = rendered.get("Deployment", full)
        rendered.get("Service", full)
        rendered.get("PodDisruptionBudget", full)
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        expected = ["python", "-m", "gateway" if name == "gateway" else f"services.{name}"]
        assert container["command"] == expected


def test_disabled_services_render_nothing(rendered: Rendered) -> None:
    for name in rendered.disabled():
        full = f"{rendered.fullname}-{name}"
        for obj in rendered.objects:
            labels = obj["metadata"].get("labels", {})
            assert labels.get("app.kubernetes.io/component") != name, obj["metadata"]["name"]
            assert not obj["metadata"]["name"].startswith(full), obj["metadata"]["name"]


def test_external_value_set_disables_two_services() -> None:
    external = Rendered("external", VALUE_SETS["external"])
    assert external.disabled() == ["composition", "reporting"]
    assert len(external.of_kind("Deployment")) == 7


def test_grpc_services_have_grpc_probes_on_50051(rendered: Rendered) -> None:
    for name in rendered.enabled():
        if name == "gateway":
            continue
        deployment = rendered.get("Deployment", f"{rendered.fullname}-{name}")
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        for probe in ("readinessProbe", "livenessProbe"):
            assert container[probe]["grpc"] == {"port": 50051}, (name, probe)
            assert "httpGet" not in container[probe]
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert ports["grpc"] == 50051
        env = env_of(container)
        assert env["SB_GRPC_PORT"]["value"] == "50051"
        assert env["SB_GRPC_HOST"]["value"] == "0.0.0.0"


def test_gateway_probes_are_http(rendered: Rendered) -> None:
    deployment = rendered.get("Deployment", f"{rendered.fullname}-gateway")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/livez", "port": "http"}
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"http": 8080, "metrics": 9090}  # /metrics is not on the public port
    assert env_of(container)["SB_HTTP_PORT"]["value"] == "8080"
    service = rendered.get("Service", f"{rendered.fullname}-gateway")
    assert [(p["name"], p["port"], p["targetPort"]) for p in service["spec"]["ports"]] == [
        ("http", 8080, "http"),
        ("metrics", 9090, "metrics"),
    ]


def test_the_gateway_is_told_which_proxies_to_believe(rendered: Rendered) -> None:
    deployment = rendered.get("Deployment", f"{rendered.fullname}-gateway")
    env = env_of(deployment["spec"]["template"]["spec"]["containers"][0])
    expected = "10.42.0.0/16" if rendered.name == "production" else ""
    assert env["SB_TRUSTED_PROXIES"]["value"] == expected
    assert env["SB_CLIENT_IP_HEADER"]["value"] == "X-Forwarded-For"
    assert env["SB_COOKIE_SECURE"]["value"] == "true"
    assert env["SB_HSTS"]["value"] == "true"
    for name in ("tickets", "accounts"):  # only the gateway reads them
        other = rendered.get("Deployment", f"{rendered.fullname}-{name}")
        container = other["spec"]["template"]["spec"]["containers"][0]
        assert "SB_TRUSTED_PROXIES" not in env_of(container)


def test_ingestion_exposes_smtp_on_25_and_2525(rendered: Rendered) -> None:
    deployment = rendered.get("Deployment", f"{rendered.fullname}-ingestion")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert {p["name"]: p["containerPort"] for p in container["ports"]} == {
        "grpc": 50051,
        "smtp": 2525,
        "metrics": 9090,
    }
    assert env_of(container)["SB_SMTP_PORT"]["value"] == "2525"
    smtp = rendered.get("Service", f"{rendered.fullname}-ingestion-smtp")
    ports = {p["port"]: p["targetPort"] for p in smtp["spec"]["ports"]}
    assert ports == {25: "smtp", 2525: "smtp"}
    expected_type = {"defaults": "ClusterIP", "production": "LoadBalancer", "external": "NodePort"}
    assert smtp["spec"]["type"] == expected_type[rendered.name]
    # The gRPC Service stays ClusterIP whatever the SMTP Service's type.
    grpc = rendered.get("Service", f"{rendered.fullname}-ingestion")
    assert grpc["spec"]["type"] == "ClusterIP"
    assert [p["port"] for p in grpc["spec"]["ports"]] == [50051, 9090]


def test_replicas_or_autoscaler(rendered: Rendered) -> None:
    for name in rendered.enabled():
        svc = rendered.components[name]
        full = f"{rendered.fullname}-{name}"
        deployment = rendered.get("Deployment", full)
        hpas = [
            h for h in rendered.of_kind("HorizontalPodAutoscaler") if h["metadata"]["name"] == full
        ]
        if svc["hpa"]["enabled"]:
            assert "replicas" not in deployment["spec"], "the HPA owns the replica count"
            (hpa,) = hpas
            assert hpa["apiVersion"] == "autoscaling/v2"
            assert hpa["spec"]["scaleTargetRef"] == {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "name": full,
            }
            assert hpa["spec"]["minReplicas"] == svc["hpa"]["minReplicas"]
        else:
            assert deployment["spec"]["replicas"] == svc["replicaCount"]
            assert not hpas


def test_production_values_take_effect() -> None:
    prod = Rendered("production", VALUE_SETS["production"])
    assert len(prod.of_kind("HorizontalPodAutoscaler")) == 4
    tickets = prod.get("Deployment", "switchboard-tickets")["spec"]["template"]["spec"]
    assert tickets["containers"][0]["resources"]["requests"] == {"cpu": "500m", "memory": "512Mi"}
    assert tickets["imagePullSecrets"] == [{"name": "registry-credentials"}]
    assert tickets["containers"][0]["image"] == "registry.example.com/switchboard/switchboard:1.4.2"
    gateway_pdb = prod.get("PodDisruptionBudget", "switchboard-gateway")["spec"]
    assert gateway_pdb["minAvailable"] == "50%" and "maxUnavailable" not in gateway_pdb
    cluster = prod.get("Cluster", "switchboard-pg")
    assert cluster["spec"]["instances"] == 3
    databases = sorted(d["spec"]["name"] for d in prod.of_kind("Database"))
    assert databases == sorted(f"sb_{n}" for n in registry.database_services())
    ingress = prod.get("Ingress", "switchboard-gateway")
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": "switchboard-gateway", "port": {"name": "http"}}


def test_outbound_gets_the_credentials_key_and_the_relay() -> None:
    prod = Rendered("production", VALUE_SETS["production"])

    def env(name: str) -> dict[str, dict[str, Any]]:
        spec = prod.get("Deployment", f"switchboard-{name}")["spec"]["template"]["spec"]
        return env_of(spec["containers"][0])

    out = env("outbound")
    ref = {"secretKeyRef": {"name": "switchboard-keys", "key": "credentials"}}
    assert out["SB_SECRET_KEY"]["valueFrom"] == ref
    assert env("ingestion")["SB_SECRET_KEY"]["valueFrom"] == ref
    assert env("tickets")["SB_SECRET_KEY"]["valueFrom"] == ref  # lookup secrets (issue 21)
    assert "SB_SECRET_KEY" not in env("routing")
    assert out["SB_SMTP_RELAY_HOST"]["value"] == "email-smtp.ap-northeast-1.amazonaws.com"
    assert out["SB_SMTP_RELAY_PORT"]["value"] == "587"
    assert out["SB_SMTP_RELAY_SECURITY"]["value"] == "starttls"
    assert out["SB_SMTP_RELAY_PASSWORD"]["valueFrom"] == {
        "secretKeyRef": {"name": "switchboard-relay", "key": "password"}
    }
    assert "SB_SMTP_RELAY_HOST" not in env("tickets")
    default = Rendered("default", [])
    spec = default.get("Deployment", "switchboard-outbound")["spec"]["template"]["spec"]
    assert "SB_SMTP_RELAY_HOST" not in env_of(spec["containers"][0])


def test_ingestion_alone_is_told_which_authserv_ids_to_trust() -> None:
    prod = Rendered("production", VALUE_SETS["production"])
    for name in ALL_SERVICES:
        spec = prod.get("Deployment", f"switchboard-{name}")["spec"]["template"]["spec"]
        env = env_of(spec["containers"][0])
        if name == "ingestion":
            assert env["SB_TRUSTED_AUTHSERV_IDS"]["value"] == "mx1.example.co.jp,mx2.example.co.jp"
        else:
            assert "SB_TRUSTED_AUTHSERV_IDS" not in env, name
    default = Rendered("defaults", [])
    spec = default.get("Deployment", "switchboard-ingestion")["spec"]["template"]["spec"]
    assert "SB_TRUSTED_AUTHSERV_IDS" not in env_of(spec["containers"][0])


def test_ingestion_can_be_pointed_at_a_clamd_and_may_reach_only_it_there() -> None:
    prod = Rendered("production", VALUE_SETS["production"])
    for name in ALL_SERVICES:
        spec = prod.get("Deployment", f"switchboard-{name}")["spec"]["template"]["spec"]
        env = env_of(spec["containers"][0])
        if name == "ingestion":
            assert env["SB_CLAMD_ADDR"]["value"] == "clamav.clamav.svc.cluster.local:3310"
        else:
            assert "SB_CLAMD_ADDR" not in env, name
    policy = _policies(prod)["switchboard-clamd"]["spec"]
    assert policy["policyTypes"] == ["Egress"]
    assert policy["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "ingestion"
    [rule] = policy["egress"]
    assert rule["ports"] == [{"port": 3310, "protocol": "TCP"}]
    assert rule["to"] == prod.user_values["clamd"]["to"]
    # off by default: no address, no egress
    default = Rendered("defaults", [])
    assert "switchboard-clamd" not in _policies(default)
    spec = default.get("Deployment", "switchboard-ingestion")["spec"]["template"]["spec"]
    assert "SB_CLAMD_ADDR" not in env_of(spec["containers"][0])


def test_image_defaults_to_app_version_and_accepts_a_digest() -> None:
    chart_yaml = yaml.safe_load((CHART / "Chart.yaml").read_text())
    default = render([])
    images = {
        c["image"]
        for o in default
        if o["kind"] == "Deployment"
        for c in o["spec"]["template"]["spec"]["containers"]
    }
    assert images == {f"switchboard:{chart_yaml['appVersion']}"}
    external = Rendered("external", VALUE_SETS["external"])
    digest = external.user_values["image"]["digest"]
    assert {c["image"] for _, c in external.containers()} == {
        f"registry.example.com/switchboard/switchboard@{digest}"
    }


# --- security --------------------------------------------------------------------------


def test_every_pod_runs_non_root_and_locked_down(rendered: Rendered) -> None:
    for obj, spec in rendered.pod_specs():
        where = f"{obj['kind']}/{obj['metadata']['name']}"
        pod = spec["securityContext"]
        assert pod["runAsNonRoot"] is True, where
        assert pod["runAsUser"] == 10001, where
        assert "fsGroup" in pod, where
        assert pod["seccompProfile"] == {"type": "RuntimeDefault"}, where
        assert spec["automountServiceAccountToken"] is False, where
        tmp = [v for v in spec["volumes"] if v["name"] == "tmp"]
        assert tmp and "emptyDir" in tmp[0], where
    for obj, container in rendered.containers():
        where = f"{obj['kind']}/{obj['metadata']['name']}/{container['name']}"
        ctx = container["securityContext"]
        assert ctx["readOnlyRootFilesystem"] is True, where
        assert ctx["allowPrivilegeEscalation"] is False, where
        assert ctx["capabilities"]["drop"] == ["ALL"], where
        assert "add" not in ctx["capabilities"], where
        assert ctx.get("runAsNonRoot", True) is True, where
        assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"], where


def test_service_account_mounts_no_token(rendered: Rendered) -> None:
    accounts = rendered.of_kind("ServiceAccount")
    if rendered.values["serviceAccount"]["create"]:
        (account,) = accounts
        assert account["automountServiceAccountToken"] is False
        expected = account["metadata"]["name"]
    else:
        assert not accounts
        expected = rendered.values["serviceAccount"]["name"]
    for _, spec in rendered.pod_specs():
        assert spec["serviceAccountName"] == expected


def _secret_strings(rendered: Rendered) -> set[str]:
    """Every secret value: the chart's Secrets, and the URLs the values put in them."""
    found: set[str] = set()
    for secret in rendered.of_kind("Secret"):
        for value in (secret.get("data") or {}).values():
            found.add(base64.b64decode(value).decode())
        found.update((secret.get("stringData") or {}).values())
    pg = rendered.values["postgresql"]
    if not pg["cnpg"]["enabled"] and not pg["existingSecret"]:
        found.update(v for v in [pg.get("url"), *pg.get("serviceUrls", {}).values()] if v)
    for store in ("nats", "redis"):
        values = rendered.values[store]
        if not values["enabled"] and not values["existingSecret"] and values.get("url"):
            found.add(values["url"])
    return {s for s in found if s}


def test_no_secret_value_in_plain_env(rendered: Rendered) -> None:
    secrets = _secret_strings(rendered)
    for obj, container in rendered.containers():
        for env in container.get("env", []):
            value = env.get("value")
            if value is None:
                continue
            for secret in secrets:
                assert secret not in value, (obj["metadata"]["name"], env["name"])
        env = env_of(container)
        assert "SB_DEMO_PASSWORD" not in env
        for name in ("SB_DATABASE_URL", "SB_REDIS_PASSWORD"):
            if name in env:
                assert "secretKeyRef" in env[name]["valueFrom"], (obj["metadata"]["name"], name)
                assert "value" not in env[name]
        for name in ("SB_NATS_URL", "SB_REDIS_URL"):
            store = name.split("_")[1].lower()
            if name in env and not rendered.values[store]["enabled"]:
                assert "secretKeyRef" in env[name]["valueFrom"], (obj["metadata"]["name"], name)


def test_secret_key_refs_point_at_real_keys(rendered: Rendered) -> None:
    chart_secrets = {
        s["metadata"]["name"]: set((s.get("data") or {}) | (s.get("stringData") or {}))
        for s in rendered.of_kind("Secret")
    }
    for obj, container in rendered.containers():
        for env in container.get("env", []):
            ref = env.get("valueFrom", {}).get("secretKeyRef")
            if ref and ref["name"] in chart_secrets:
                assert ref["key"] in chart_secrets[ref["name"]], (obj["metadata"]["name"], ref)


def test_chart_secret_holds_per_service_urls_and_pods_restart_on_change() -> None:
    objects = render(
        [],
        {"postgresql.serviceUrls": {"tickets": "postgresql://tickets:s3cret@pg-tickets:5432/t"}},
    )
    (secret,) = [o for o in objects if o["kind"] == "Secret"]
    assert base64.b64decode(secret["data"]["tickets-database-url"]).decode().endswith("/t")
    by_name = {o["metadata"]["name"]: o for o in objects if o["kind"] == "Deployment"}
    tickets = by_name["switchboard-tickets"]["spec"]["template"]
    ref = env_of(tickets["spec"]["containers"][0])["SB_DATABASE_URL"]["valueFrom"]["secretKeyRef"]
    assert ref == {"name": "switchboard", "key": "tickets-database-url"}
    routing = by_name["switchboard-routing"]["spec"]["template"]["spec"]["containers"][0]
    assert env_of(routing)["SB_DATABASE_URL"]["valueFrom"]["secretKeyRef"]["key"] == "database-url"
    assert "checksum/secret" in tickets["metadata"]["annotations"]
    dump = json.dumps([o for o in objects if o["kind"] != "Secret"])
    assert "s3cret" not in dump


# --- environment -----------------------------------------------------------------------


def test_environment_contract(rendered: Rendered) -> None:
    for obj, container in rendered.containers():
        if obj["kind"] == "Pod":  # the helm-test pod only needs the gateway's URL
            continue
        env = env_of(container)
        where = f"{obj['kind']}/{obj['metadata']['name']}"
        assert env["SB_ENV"]["value"] == "production", where
        assert env["SB_LOG_FORMAT"]["value"] == "json", where
        assert env["SB_LOG_LEVEL"]["value"] == rendered.values["logLevel"], where
        assert "SB_NATS_URL" in env and "SB_REDIS_URL" in env, where
        for name in GRPC_SERVICES:
            assert env[f"SB_{name.upper()}_ADDR"]["value"] == f"{rendered.fullname}-{name}:50051"
        component = obj["metadata"]["labels"]["app.kubernetes.io/component"]
        if component in ALL_SERVICES:
            if registry.get(component).database:
                database = rendered.components[component]["database"]["name"] or f"sb_{component}"
                assert env["SB_DATABASE_NAME"]["value"] == database, where
                assert "SB_DATABASE_URL" in env, where
            else:
                assert "SB_DATABASE_URL" not in env, where
        elif component == "bootstrap":
            for name in GRPC_SERVICES:
                owns = name in rendered.enabled() and registry.get(name).database
                assert (f"SB_{name.upper()}_DATABASE_URL" in env) is owns, name


def test_in_cluster_dependencies_wire_urls() -> None:
    prod = Rendered("production", VALUE_SETS["production"])
    container = prod.get("Deployment", "switchboard-tickets")["spec"]["template"]["spec"][
        "containers"
    ][0]
    env = env_of(container)
    assert env["SB_NATS_URL"]["value"] == "nats://switchboard-nats:4222"
    assert env["SB_REDIS_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
        "name": "switchboard-redis-auth",
        "key": "password",
    }
    # Kubernetes expands $(SB_REDIS_PASSWORD): it must be defined before SB_REDIS_URL.
    names = [e["name"] for e in container["env"]]
    assert names.index("SB_REDIS_PASSWORD") < names.index("SB_REDIS_URL")
    assert env["SB_REDIS_URL"]["value"] == (
        "redis://:$(SB_REDIS_PASSWORD)@switchboard-redis-master:6379/0"
    )
    assert env["SB_DATABASE_URL"]["valueFrom"]["secretKeyRef"] == {
        "name": "switchboard-pg-app",
        "key": "uri",
    }
    assert env["SB_DATABASE_CREATE"]["value"] == "false"


def test_existing_secret_with_per_service_key() -> None:
    external = Rendered("external", VALUE_SETS["external"])
    assert not external.of_kind("Secret")
    refs = {}
    for name in ("tickets", "routing"):
        deployment = external.get("Deployment", f"switchboard-{name}")
        env = env_of(deployment["spec"]["template"]["spec"]["containers"][0])
        refs[name] = env["SB_DATABASE_URL"]["valueFrom"]["secretKeyRef"]
        if name == "tickets":
            assert env["SB_DATABASE_NAME"]["value"] == "switchboard_tickets"
    assert refs["tickets"] == {"name": "switchboard-connections", "key": "tickets-database-url"}
    assert refs["routing"] == {"name": "switchboard-connections", "key": "database-url"}


# --- labels ----------------------------------------------------------------------------


def test_standard_labels_everywhere(rendered: Rendered) -> None:
    for obj in rendered.objects:
        labels = obj["metadata"].get("labels", {})
        missing = [k for k in STANDARD_LABELS if k not in labels]
        assert not missing, f"{obj['kind']}/{obj['metadata']['name']} lacks {missing}"
        assert labels["app.kubernetes.io/instance"] == RELEASE
        assert labels["app.kubernetes.io/managed-by"] == "Helm"
        assert labels["app.kubernetes.io/part-of"] == "switchboard"


def test_selectors_match_pod_labels(rendered: Rendered) -> None:
    pods = {}
    for deployment in rendered.of_kind("Deployment"):
        selector = deployment["spec"]["selector"]["matchLabels"]
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert labels_match(selector, labels)
        assert set(selector) == {
            "app.kubernetes.io/name",
            "app.kubernetes.io/instance",
            "app.kubernetes.io/component",
        }
        pods[deployment["metadata"]["name"]] = labels
    # Every Service and PDB selects exactly the pods of its own Deployment.
    for obj in rendered.of_kind("Service") + rendered.of_kind("PodDisruptionBudget"):
        selector = (
            obj["spec"]["selector"]
            if obj["kind"] == "Service"
            else obj["spec"]["selector"]["matchLabels"]
        )
        matched = [name for name, labels in pods.items() if labels_match(selector, labels)]
        component = obj["metadata"]["labels"]["app.kubernetes.io/component"]
        assert matched == [f"{rendered.fullname}-{component}"], obj["metadata"]["name"]


# --- network policies ------------------------------------------------------------------


def _policies(rendered: Rendered) -> dict[str, dict[str, Any]]:
    return {p["metadata"]["name"]: p for p in rendered.of_kind("NetworkPolicy")}


def _peer_components(rule: dict[str, Any], key: str) -> set[str]:
    return {
        peer["podSelector"]["matchLabels"]["app.kubernetes.io/component"]
        for peer in rule.get(key, [])
        if "podSelector" in peer
        and "app.kubernetes.io/component" in peer["podSelector"].get("matchLabels", {})
    }


def test_default_deny_selects_every_release_pod(rendered: Rendered) -> None:
    deny = _policies(rendered)[f"{rendered.fullname}-default-deny"]["spec"]
    assert sorted(deny["policyTypes"]) == ["Egress", "Ingress"]
    assert not deny.get("ingress") and not deny.get("egress")
    for obj, _spec in rendered.pod_specs():
        labels = (
            obj["metadata"]["labels"]
            if obj["kind"] == "Pod"
            else obj["spec"]["template"]["metadata"]["labels"]
        )
        assert labels_match(deny["podSelector"]["matchLabels"], labels), obj["metadata"]["name"]
    # The subcharts' pods (app.kubernetes.io/name nats / redis) are not selected.
    assert deny["podSelector"]["matchLabels"]["app.kubernetes.io/name"] == "switchboard"


def test_allowed_paths_are_exactly_the_documented_ones(rendered: Rendered) -> None:
    policies = _policies(rendered)
    enabled = rendered.enabled()
    expected_callers: dict[str, set[str]] = {name: set() for name in GRPC_SERVICES}
    for caller, callees in {c.name: c.calls for c in registry.COMPONENTS}.items():
        for callee in callees:
            if caller in enabled and callee in enabled:
                expected_callers[callee].add(caller)
    for name in enabled:
        spec = policies[f"{rendered.fullname}-{name}"]["spec"]
        grpc_from = set()
        for rule in spec["ingress"]:
            if any(p["port"] == "grpc" for p in rule["ports"]):
                grpc_from |= _peer_components(rule, "from")
        if name != "gateway":
            assert grpc_from == expected_callers[name], name
        grpc_to = set()
        for rule in spec["egress"]:
            if any(p["port"] == 50051 for p in rule.get("ports", [])):
                grpc_to |= _peer_components(rule, "to")
        expected_to = {c for c, callers in expected_callers.items() if name in callers}
        assert grpc_to == expected_to, name

    def ingress_ports(name: str) -> set[Any]:
        rules = policies[f"{rendered.fullname}-{name}"]["spec"]["ingress"]
        return {p["port"] for rule in rules for p in rule["ports"]}

    assert ingress_ports("gateway") == {"http", "metrics"}
    assert ingress_ports("ingestion") == {"grpc", "smtp", "metrics"}


def test_dns_and_datastore_egress(rendered: Rendered) -> None:
    policies = _policies(rendered)
    dns = policies[f"{rendered.fullname}-dns"]["spec"]["egress"]
    assert {(p["port"], p["protocol"]) for rule in dns for p in rule["ports"]} == {
        (53, "UDP"),
        (53, "TCP"),
    }
    stores = policies[f"{rendered.fullname}-datastores"]["spec"]
    ports = {rule["ports"][0]["port"]: rule for rule in stores["egress"][:3]}
    expected = {"defaults": {4222, 6379, 5432}, "production": {4222, 6379, 5432}}
    expected["external"] = {4222, 6380, 5432}
    assert set(ports) == expected[rendered.name]
    if rendered.name == "production":  # in-cluster: the dependencies' pods
        for port, name in ((4222, "nats"), (6379, "redis")):
            (peer,) = ports[port]["to"]
            assert peer["podSelector"]["matchLabels"]["app.kubernetes.io/name"] == name
            assert peer["podSelector"]["matchLabels"]["app.kubernetes.io/instance"] == RELEASE
        cnpg = {"podSelector": {"matchLabels": {"cnpg.io/cluster": "switchboard-pg"}}}
        assert ports[5432]["to"] == [cnpg]
    elif rendered.name == "external":  # external: the configured CIDRs
        assert ports[4222]["to"] == [{"ipBlock": {"cidr": "10.20.0.0/24"}}]
        assert ports[5432]["to"][0] == {"ipBlock": {"cidr": "10.20.2.0/24"}}


def test_helm_test_pod_may_reach_the_gateway(rendered: Rendered) -> None:
    policies = _policies(rendered)
    name = f"{rendered.fullname}-test"
    if not rendered.values["helmTest"]["enabled"]:
        assert name not in policies
        return
    egress = policies[name]["spec"]["egress"]
    assert _peer_components(egress[0], "to") == {"gateway"}
    assert egress[0]["ports"] == [{"port": 8080, "protocol": "TCP"}]
    gateway = policies[f"{rendered.fullname}-gateway"]["spec"]["ingress"]
    assert any("test" in _peer_components(rule, "from") for rule in gateway)


def test_only_the_configured_peers_may_scrape(rendered: Rendered) -> None:
    policies = _policies(rendered)
    scrapers = rendered.values["metrics"]["scrapeFrom"]
    for name in rendered.enabled():
        rules = policies[f"{rendered.fullname}-{name}"]["spec"]["ingress"]
        (rule,) = [r for r in rules if r["ports"] == [{"port": "metrics", "protocol": "TCP"}]]
        assert rule.get("from", []) == scrapers, name
    if rendered.name == "production":
        assert scrapers[0]["namespaceSelector"]["matchLabels"] == {
            "kubernetes.io/metadata.name": "monitoring"
        }


# --- metrics ---------------------------------------------------------------------------


def _pod_annotations(deployment: dict[str, Any]) -> dict[str, str]:
    return dict(deployment["spec"]["template"]["metadata"].get("annotations", {}))


def test_every_component_serves_metrics_on_its_own_port_with_scrape_annotations(
    rendered: Rendered,
) -> None:
    for name in rendered.enabled():
        full = f"{rendered.fullname}-{name}"
        deployment = rendered.get("Deployment", full)
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert ports["metrics"] == 9090, name
        assert 9090 not in {v for k, v in ports.items() if k != "metrics"}, name
        env = env_of(container)
        assert env["SB_METRICS_PORT"]["value"] == "9090", name
        assert env["SB_METRICS_HOST"]["value"] == "0.0.0.0", name
        assert "SB_METRICS_ENABLED" not in env, name
        annotations = _pod_annotations(deployment)
        assert annotations["prometheus.io/scrape"] == "true", name
        assert annotations["prometheus.io/port"] == "9090", name
        assert annotations["prometheus.io/path"] == "/metrics", name
        service = rendered.get("Service", full)
        assert ("metrics", 9090, "metrics") in [
            (p["name"], p["port"], p["targetPort"]) for p in service["spec"]["ports"]
        ], name


def test_metrics_can_be_turned_off_for_one_component_and_annotations_for_all() -> None:
    objects = render(
        [],
        {"services.reporting.metrics.enabled": False, "services.tickets.metrics.port": 9191},
    )
    by = {(o["kind"], o["metadata"]["name"]): o for o in objects}
    reporting = by[("Deployment", f"{RELEASE}-reporting")]
    container = reporting["spec"]["template"]["spec"]["containers"][0]
    assert "metrics" not in {p["name"] for p in container["ports"]}
    assert env_of(container)["SB_METRICS_ENABLED"]["value"] == "false"
    assert "prometheus.io/scrape" not in _pod_annotations(reporting)
    service = by[("Service", f"{RELEASE}-reporting")]
    assert [p["name"] for p in service["spec"]["ports"]] == ["grpc"]
    policy = by[("NetworkPolicy", f"{RELEASE}-reporting")]["spec"]
    assert not [r for r in policy["ingress"] for p in r["ports"] if p["port"] == "metrics"]
    tickets = by[("Deployment", f"{RELEASE}-tickets")]
    assert _pod_annotations(tickets)["prometheus.io/port"] == "9191"  # the rest: defaults
    assert (
        env_of(tickets["spec"]["template"]["spec"]["containers"][0])["SB_METRICS_PORT"]["value"]
        == "9191"
    )

    quiet = render([], {"metrics.podAnnotations": False})
    for deployment in [o for o in quiet if o["kind"] == "Deployment"]:
        assert not [k for k in _pod_annotations(deployment) if k.startswith("prometheus.io/")]


def test_the_service_monitor_is_off_by_default_and_scrapes_every_component_when_on(
    rendered: Rendered,
) -> None:
    monitors = rendered.of_kind("ServiceMonitor")
    if not rendered.values["metrics"]["serviceMonitor"]["enabled"]:
        assert not monitors
        return
    (monitor,) = monitors
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    spec = monitor["spec"]
    assert spec["namespaceSelector"] == {"matchNames": ["switchboard"]}
    (endpoint,) = spec["endpoints"]
    assert (endpoint["port"], endpoint["path"], endpoint["interval"]) == (
        "metrics",
        "/metrics",
        "15s",
    )
    scraped = {
        s["metadata"]["labels"]["app.kubernetes.io/component"]
        for s in rendered.of_kind("Service")
        if labels_match(spec["selector"]["matchLabels"], s["metadata"]["labels"])
        and "metrics" in {p["name"] for p in s["spec"]["ports"]}
    }
    assert scraped == set(rendered.enabled())


def test_the_grafana_dashboard_ships_as_a_configmap_when_enabled(rendered: Rendered) -> None:
    maps = [
        c for c in rendered.of_kind("ConfigMap") if c["metadata"]["name"].endswith("-dashboard")
    ]
    if not rendered.values["metrics"]["dashboard"]["enabled"]:
        assert not maps
        return
    (dashboard,) = maps
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert dashboard["metadata"]["annotations"] == {"grafana_folder": "Switchboard"}
    shipped = json.loads(dashboard["data"]["switchboard.json"])
    assert shipped == json.loads((CHART / "dashboards" / "switchboard.json").read_text())


def _dashboard_queries() -> list[str]:
    dashboard = json.loads((CHART / "dashboards" / "switchboard.json").read_text())
    return [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]


def test_the_dashboard_queries_only_series_the_code_exports() -> None:
    """Every metric a panel queries is one the code defines: a series of the catalogue
    (services/runtime/metrics.py; a histogram's _bucket/_sum/_count), or one of
    prometheus-client's process collectors. And every series of the catalogue is on a
    panel."""
    from services.runtime import metrics

    exported: dict[str, str] = {}
    for series in metrics.CATALOGUE:
        if series.kind == "histogram":
            for suffix in ("_bucket", "_sum", "_count"):
                exported[series.name + suffix] = series.name
        else:
            exported[series.name] = series.name
    standard = metrics.Metrics("probe").exposition()[0].decode()
    for line in standard.splitlines():
        if line.startswith("# TYPE ") and not line.split()[2].startswith("switchboard_"):
            exported[line.split()[2]] = line.split()[2]
    used: set[str] = set()
    for expr in _dashboard_queries():
        for name in re.findall(r"\b((?:switchboard|process|python)_[a-z0-9_]+)\b", expr):
            assert name in exported, f"the dashboard queries {name}, which nothing exports"
            used.add(exported[name])
    assert {s.name for s in metrics.CATALOGUE} - used == set()


# --- bootstrap and helm test -----------------------------------------------------------


def test_bootstrap_job_is_named_by_revision_and_not_a_hook(rendered: Rendered) -> None:
    (job,) = rendered.of_kind("Job")
    assert job["metadata"]["name"] == f"{rendered.fullname}-bootstrap-{REVISION}"
    assert "helm.sh/hook" not in job["metadata"].get("annotations", {})
    spec = job["spec"]
    assert spec["backoffLimit"] == rendered.values["bootstrap"]["backoffLimit"]
    bootstrap = rendered.values["bootstrap"]
    assert spec["ttlSecondsAfterFinished"] == bootstrap["ttlSecondsAfterFinished"]
    pod = spec["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    assert pod["containers"][0]["command"] == ["python", "-m", "services.bootstrap"]


def test_bootstrap_job_name_follows_each_revision() -> None:
    names = {}
    for revision in (1, 2, 123):
        job = next(o for o in render([], revision=revision) if o["kind"] == "Job")
        names[revision] = job["metadata"]["name"]
    assert names == {r: f"switchboard-bootstrap-{r}" for r in (1, 2, 123)}


def test_helm_test_pod(rendered: Rendered) -> None:
    pods = rendered.of_kind("Pod")
    if not rendered.values["helmTest"]["enabled"]:
        assert not pods
        return
    (pod,) = pods
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    container = pod["spec"]["containers"][0]
    assert container["command"][:2] == ["python", "-c"]
    script = container["command"][2]
    assert "urllib.request" in script
    assert f'"http://{rendered.fullname}-gateway:8080/healthz"' in script
    assert pod["spec"]["restartPolicy"] == "Never"
    compile(script, "helm-test", "exec")  # the script is valid Python


def test_helm_test_script_fails_unless_200(tmp_path: Path) -> None:
    """Run the rendered script against a local server answering 200, then 503."""
    import http.server
    import subprocess
    import sys
    import threading

    (pod,) = [o for o in render([]) if o["kind"] == "Pod"]
    script = pod["spec"]["containers"][0]["command"][2]
    status = {"code": 200}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps({"status": "ok" if status["code"] == 200 else "degraded"}).encode()
            self.send_response(status["code"])
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    local = script.replace(
        "http://switchboard-gateway:8080/healthz", f"http://127.0.0.1:{server.server_port}/healthz"
    )
    try:
        ok = subprocess.run([sys.executable, "-c", local], capture_output=True, timeout=30)
        status["code"] = 503
        bad = subprocess.run([sys.executable, "-c", local], capture_output=True, timeout=30)
    finally:
        server.shutdown()
    assert ok.returncode == 0, ok.stderr
    assert b"-> 200" in ok.stdout
    assert bad.returncode == 1
    assert b"-> 503" in bad.stdout


# --- the components: one registry, serviceDefaults ---------------------------------------


def test_the_chart_has_the_registry_components_with_their_calls_and_databases() -> None:
    """services/runtime/registry.py is the list of components; the chart's values are its
    Kubernetes side: the same names, the same gRPC calls, a database where one is owned."""
    with load_chart() as chart:
        values = chart.merge_values({})
    effective = components(values)
    assert set(effective) == {c.name for c in registry.COMPONENTS}
    for component in registry.COMPONENTS:
        settings = effective[component.name]
        assert sorted(settings["calls"]) == sorted(component.calls), component.name
        assert settings["database"]["enabled"] is component.database, component.name
        assert ("grpc" in settings["ports"]) is component.grpc, component.name


def test_service_defaults_reach_every_component_that_does_not_say_otherwise() -> None:
    objects = render([], {"serviceDefaults.replicaCount": 3})
    replicas = {
        o["metadata"]["labels"]["app.kubernetes.io/component"]: o["spec"]["replicas"]
        for o in objects
        if o["kind"] == "Deployment"
    }
    assert replicas == {name: 1 if name == "reporting" else 3 for name in ALL_SERVICES}


def test_a_component_can_turn_a_default_off_without_losing_the_rest() -> None:
    """false overrides true (sprig's merge would keep true), and the keys of a map that are
    not given stay the defaults'."""
    objects = render(
        [], {"services.routing.pdb.enabled": False, "services.tickets.hpa": {"enabled": True}}
    )
    pdbs = {o["metadata"]["name"] for o in objects if o["kind"] == "PodDisruptionBudget"}
    assert f"{RELEASE}-routing" not in pdbs
    assert f"{RELEASE}-tickets" in pdbs
    (hpa,) = [o for o in objects if o["kind"] == "HorizontalPodAutoscaler"]
    assert hpa["metadata"]["name"] == f"{RELEASE}-tickets"
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 6)


def test_skaffold_dev_profile_runs_one_replica_of_everything_without_autoscalers() -> None:
    skaffold = yaml.safe_load((CHART.parents[1] / "skaffold.yaml").read_text())
    (dev,) = [p for p in skaffold["profiles"] if p["name"] == "dev"]
    (patch,) = [p for p in dev["patches"] if p["path"].endswith("/setValues")]
    objects = render([], patch["value"])  # the chart's own values, as skaffold deploys it
    deployments = [o for o in objects if o["kind"] == "Deployment"]
    assert len(deployments) == len(ALL_SERVICES)
    assert all(d["spec"]["replicas"] == 1 for d in deployments)
    assert not [o for o in objects if o["kind"] == "HorizontalPodAutoscaler"]


def test_a_new_component_needs_only_its_values_entry() -> None:
    objects = render([], {"services.billing": {"calls": ["tickets"]}})
    by = {(o["kind"], o["metadata"]["name"]): o for o in objects}
    deployment = by[("Deployment", f"{RELEASE}-billing")]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["python", "-m", "services.billing"]
    assert env_of(container)["SB_DATABASE_NAME"]["value"] == "sb_billing"
    assert env_of(container)["SB_BILLING_ADDR"]["value"] == f"{RELEASE}-billing:50051"
    assert ("PodDisruptionBudget", f"{RELEASE}-billing") in by
    tickets_policy = by[("NetworkPolicy", f"{RELEASE}-tickets")]["spec"]
    callers = {
        peer["podSelector"]["matchLabels"]["app.kubernetes.io/component"]
        for rule in tickets_policy["ingress"]
        for peer in rule.get("from", [])
    }
    assert "billing" in callers


# --- values.schema.json ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"services.routing.replicaCount": "three"},
            "at '/services/routing/replicaCount': got string, want integer",
        ),
        ({"services.routing.replicaCount": -1}, "/services/routing/replicaCount"),
        ({"replicas": 3}, "additional properties 'replicas' not allowed"),
        ({"logLevel": "verbose"}, "/logLevel"),
        ({"services.Billing_v2": {"enabled": True}}, "invalid propertyName 'Billing_v2'"),
        ({"services.gateway.calls": ["Billing"]}, "/services/gateway/calls/0"),
        ({"serviceDefaults.replicaCount": "two"}, "/serviceDefaults"),
        ({"services.routing.database.enabled": "no"}, "/services/routing/database/enabled"),
        ({"image.pullPolicy": "Sometimes"}, "/image/pullPolicy"),
        ({"networkPolicy.datastores.redis.port": 70000}, "/networkPolicy/datastores/redis/port"),
        ({"clamd.address": "clamd"}, "/clamd/address"),
    ],
)
def test_schema_rejects_bad_values(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(helm.HelmValuesError) as caught:
        render([], overrides)
    text = str(caught.value)
    assert "values don't meet the specifications of the schema" in text
    assert message in text, text


def test_a_call_to_something_that_is_not_a_component_fails_the_render() -> None:
    with pytest.raises(helm.HelmRenderError) as caught:
        render([], {"services.gateway.calls": ["billing"]})
    assert 'services.gateway.calls: "billing" is not a service' in str(caught.value)


def test_schema_accepts_every_value_set() -> None:
    with load_chart() as chart:
        for files in VALUE_SETS.values():
            chart.validate_schema(merge_values(files))


def test_schema_is_draft_07_and_closed() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    assert schema["additionalProperties"] is False
    defaults = yaml.safe_load((CHART / "values.yaml").read_text())
    assert set(defaults) <= set(schema["properties"])


def test_missing_database_url_fails_with_a_clear_message() -> None:
    with pytest.raises(helm.HelmRenderError, match="postgresql: no database URL for"):
        render([], {"postgresql.url": ""})


# --- chart metadata and the render module -------------------------------------------------


def test_dependencies_are_condition_gated_and_off_by_default() -> None:
    chart_yaml = yaml.safe_load((CHART / "Chart.yaml").read_text())
    defaults = yaml.safe_load((CHART / "values.yaml").read_text())
    deps = {d["name"]: d for d in chart_yaml["dependencies"]}
    assert set(deps) == {"nats", "redis"}
    assert deps["nats"]["repository"] == "https://nats-io.github.io/k8s/helm/charts/"
    assert deps["redis"]["repository"].startswith("oci://")
    for name, dep in deps.items():
        assert dep["condition"] == f"{name}.enabled"
        assert defaults[name]["enabled"] is False
    # Not vendored in the repository (`helm dependency build` fetches them); where someone
    # did, they must be the declared ones.
    statuses = {d["name"]: d["status"] for d in helm.dependency_list(CHART)}
    assert set(statuses) == {"nats", "redis"}
    assert set(statuses.values()) <= {"missing", "ok", "unpacked"}


def test_render_main_prints_the_default_manifests(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 0
    out = capsys.readouterr().out
    documents = [d for d in yaml.safe_load_all(out) if d]
    assert {d["kind"] for d in documents} >= {"Deployment", "Service", "NetworkPolicy", "Job"}
    assert "# Source: switchboard/templates/service.yaml" in out


def test_render_main_reports_schema_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--set", "logLevel=verbose"]) == 1
    assert "/logLevel" in capsys.readouterr().err


def test_long_release_name_keeps_names_short_and_distinct() -> None:
    release = "a-very-long-release-name-for-testing-truncation-abcde"  # 53, Helm's maximum
    objects = render([VALUES_DIR / "production.yaml"], release=release, revision=12345)
    names = [(o["kind"], o["metadata"]["name"]) for o in objects]
    assert len(names) == len(set(names))
    for kind, name in names:
        if kind not in {k for _, k in CRD_KINDS}:
            assert len(name) <= 63, (kind, name)
    services = {n for k, n in names if k == "Service"}
    for obj in objects:
        for container in (
            obj.get("spec", {}).get("template", {}).get("spec", {}).get("containers", [])
        ):
            for env in container.get("env", []):
                if env["name"] in {f"SB_{s.upper()}_ADDR" for s in GRPC_SERVICES}:
                    host = env["value"].rsplit(":", 1)[0]
                    assert host in services, env
    (job,) = [o for o in objects if o["kind"] == "Job"]
    assert job["metadata"]["name"].endswith("-bootstrap-12345")


@pytest.mark.parametrize("value_set", list(VALUE_SETS))
def test_helm_lint_finds_only_the_unvendored_dependencies(value_set: str) -> None:
    report = helm.lint(CHART, merge_values(VALUE_SETS[value_set]), kube_version="v1.33.0")
    problems = [m["error"] for m in report["messages"] if m["severity"] >= 2]
    for problem in problems:
        assert problem.startswith("chart directory is missing these dependencies:"), problem


def test_stream_replicas_reach_every_pod() -> None:
    from tests.chart.render import render

    values = Path(__file__).parent / "values" / "production.yaml"
    for obj in render([values]):
        if obj.get("kind") != "Deployment":
            continue
        env = {
            e["name"]: e.get("value")
            for e in obj["spec"]["template"]["spec"]["containers"][0]["env"]
        }
        assert env["SB_NATS_REPLICAS"] == "3", obj["metadata"]["name"]


def test_only_the_sealing_services_get_the_credentials_key_and_only_from_a_secret() -> None:
    from tests.chart.render import render

    key = "A" * 43
    objs = render([], {"credentialsKey": {"value": key}})
    for obj in objs:
        if obj.get("kind") != "Deployment":
            continue
        env = obj["spec"]["template"]["spec"]["containers"][0]["env"]
        names = {e["name"]: e for e in env}
        component = obj["metadata"]["labels"]["app.kubernetes.io/component"]
        sealing = component in ("ingestion", "outbound", "tickets")
        assert ("SB_SECRET_KEY" in names) is sealing
        if sealing:
            assert "value" not in names["SB_SECRET_KEY"]
            assert names["SB_SECRET_KEY"]["valueFrom"]["secretKeyRef"]["key"] == "credentials-key"
    [secret] = [o for o in objs if o.get("kind") == "Secret"]
    assert base64.b64decode(secret["data"]["credentials-key"]).decode() == key
    none = render([], {})
    assert all("SB_SECRET_KEY" not in str(o) for o in none if o.get("kind") == "Deployment")


def test_the_connect_allow_list_reaches_the_services_that_connect_out_only() -> None:
    prod = Rendered("production", VALUE_SETS["production"])
    for name in ALL_SERVICES:
        spec = prod.get("Deployment", f"switchboard-{name}")["spec"]["template"]["spec"]
        env = env_of(spec["containers"][0])
        # routing: its rule webhooks; tickets: the customer-data lookup (issue 21)
        if name in ("ingestion", "outbound", "routing", "tickets"):
            assert env["SB_CONNECT_ALLOW"]["value"] == "mail.corp.internal,10.20.0.0/16"
        else:
            assert "SB_CONNECT_ALLOW" not in env, name
    default = Rendered("defaults", [])
    spec = default.get("Deployment", "switchboard-outbound")["spec"]["template"]["spec"]
    assert "SB_CONNECT_ALLOW" not in env_of(spec["containers"][0])  # nothing allowed
