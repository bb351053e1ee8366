"""deploy/kubernetes/: manifests valid for Kubernetes, kustomize overlays, generated ConfigMaps."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.deploy.conftest import (
    COLLECTOR_CONFIG,
    K8S,
    KUBERNETES_VERSIONS,
    REPO,
    RULES_DIR,
    kustomization_dirs,
    kustomize,
    kustomize_overlays,
    load_yaml,
    load_yaml_documents,
    manifest_files,
    patch_files,
)

GENERATOR = REPO / "scripts" / "gen-k8s-configmaps.py"
COLLECTOR_CONFIGS_IN_DEPLOY = {K8S / "components" / "agent" / "agent.yaml"}


def _rel(path: Path) -> str:
    return str(path.relative_to(REPO))


def _validate(doc: dict[str, Any], version: str) -> str | None:
    try:
        kubernetes_validate.validate(doc, version, strict=True)
    except kubernetes_validate.ValidationError as exc:
        return f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}: {exc.message} at {list(exc.path)}"
    return None


def _build(directory: Path) -> list[dict[str, Any]]:
    result = subprocess.run(
        [str(kustomize()), "build", str(directory)], capture_output=True, text=True, timeout=120, check=False
    )
    assert 0 == result.returncode, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def _by_kind(docs: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(d["kind"], d["metadata"]["name"]): d for d in docs}


def _mib(quantity: str) -> float:
    """A Kubernetes memory quantity or a GOMEMLIMIT value in MiB."""
    units = {"Ki": 1 / 1024, "Mi": 1, "Gi": 1024, "KiB": 1 / 1024, "MiB": 1, "GiB": 1024}
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([A-Za-z]*)", quantity)
    assert match, quantity
    number, unit = match.groups()
    return float(number) * units[unit] if unit else float(number) / 2**20


def _listen_port(endpoint: str) -> int:
    """The port of a collector ``endpoint`` setting, also through ``${env:NAME:-default}``."""
    digits = re.findall(r"(\d+)\}?$", endpoint.strip())
    assert digits, f"no port in {endpoint!r}"
    return int(digits[-1])


def _gateway_config() -> dict[str, Any]:
    path = COLLECTOR_CONFIG / "gateway.yaml"
    if not path.exists():
        pytest.fail("collector-config/gateway.yaml is missing")
    return dict(load_yaml(path))


class TestManifests:
    @pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
    def test_every_manifest_validates_against_the_kubernetes_schema(self, version: str) -> None:
        """Each resource file listed by a kustomization is a valid object (strict: no unknown fields)."""
        errors = [
            f"{_rel(path)}: {error}"
            for path in manifest_files()
            for doc in load_yaml_documents(path)
            if (error := _validate(doc, version))
        ]
        assert [] == errors
        assert len(manifest_files()) >= 10

    def test_no_manifest_is_left_out_of_kustomize(self) -> None:
        """Every YAML file under deploy/kubernetes/ is used: resource, patch, kustomization or config."""
        used = set(manifest_files()) | set(patch_files()) | COLLECTOR_CONFIGS_IN_DEPLOY
        used |= {d / "kustomization.yaml" for d in kustomization_dirs()}
        helm = K8S / "helm"
        unused = [
            _rel(p) for p in sorted(K8S.rglob("*.yaml")) if p not in used and not p.is_relative_to(helm)
        ]
        assert [] == unused


class TestGeneratedConfigMaps:
    def test_generated_files_are_up_to_date(self) -> None:
        """`scripts/gen-k8s-configmaps.py --check` passes: nobody edited a source without regenerating."""
        result = subprocess.run(
            [sys.executable, str(GENERATOR), "--check"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert (0, "") == (result.returncode, result.stderr)

    @pytest.mark.parametrize(
        ("manifest", "configmap", "sources"),
        [
            (
                "base/generated/collector-configmap.yaml",
                "lumen-otelcol-config",
                [
                    "collector-config/gateway-keyed.yaml",
                    "collector-config/gateway-search.yaml",
                    "collector-config/gateway-traces.yaml",
                    "collector-config/gateway.yaml",
                ],
            ),
            (
                "components/agent/generated/agent-configmap.yaml",
                "lumen-otelcol-agent-config",
                ["deploy/kubernetes/components/agent/agent.yaml"],
            ),
            ("base/generated/prometheus-rules-configmap.yaml", "lumen-prometheus-rules", None),
        ],
    )
    def test_configmap_holds_its_source_byte_for_byte(
        self, manifest: str, configmap: str, sources: list[str] | None
    ) -> None:
        """The committed ConfigMap's data is exactly the source file(s): one source of truth."""
        docs = {d["metadata"]["name"]: d for d in load_yaml_documents(K8S / manifest)}
        paths = [REPO / s for s in sources] if sources else sorted(RULES_DIR.glob("*.yaml"))
        expected = {p.name: p.read_text(encoding="utf-8") for p in paths}
        assert expected == docs[configmap]["data"]

    def test_a_changed_source_is_reported_stale(self, tmp_path: Path) -> None:
        """The drift check compares content: on a copy of the tree, an edited gateway.yaml fails --check."""
        import shutil

        for part in ("scripts", "collector-config", "deploy"):
            shutil.copytree(REPO / part, tmp_path / part)
        with (tmp_path / "collector-config" / "gateway.yaml").open("a", encoding="utf-8") as config:
            config.write("# an edit nobody regenerated\n")
        result = subprocess.run(
            [sys.executable, str(tmp_path / "scripts" / GENERATOR.name), "--check"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        stale = (
            "stale: deploy/kubernetes/base/generated/collector-configmap.yaml"
            " (run scripts/gen-k8s-configmaps.py)"
        )
        assert (1, True) == (result.returncode, stale in result.stderr.splitlines())


class TestKustomize:
    @pytest.mark.parametrize("overlay", [p.name for p in kustomize_overlays()])
    @pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
    def test_overlay_builds_and_validates(self, overlay: str, version: str) -> None:
        """`kustomize build overlays/<name>` succeeds and every object it renders is valid."""
        docs = _build(K8S / "overlays" / overlay)
        errors = [error for doc in docs if (error := _validate(doc, version))]
        assert [] == errors

    def test_overlays_are_dev_and_prod(self) -> None:
        assert ["dev", "prod"] == [p.name for p in kustomize_overlays()]

    def test_prod_adds_the_agent_daemonset_and_dev_does_not(self) -> None:
        kinds = {
            overlay: sorted(k for k in _by_kind(_build(K8S / "overlays" / overlay)) if k[0] == "DaemonSet")
            for overlay in ("dev", "prod")
        }
        assert {"dev": [], "prod": [("DaemonSet", "lumen-otelcol-agent")]} == kinds

    def test_prod_requires_the_redaction_key(self) -> None:
        """In prod the gateway does not start without LUMEN_REDACTION_KEY (keyed pseudonyms only)."""
        deployment = _by_kind(_build(K8S / "overlays" / "prod"))[("Deployment", "lumen-otelcol-gateway")]
        env = {e["name"]: e for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
        assert {"name": "lumen-redaction-key", "key": "key", "optional": False} == env["LUMEN_REDACTION_KEY"][
            "valueFrom"
        ]["secretKeyRef"]

    @pytest.mark.parametrize("overlay", ["dev", "prod"])
    def test_gateway_is_highly_available(self, overlay: str) -> None:
        """≥ 2 replicas, an autoscaler that never goes below 2, a disruption budget, all in one namespace."""
        objects = _by_kind(_build(K8S / "overlays" / overlay))
        deployment = objects[("Deployment", "lumen-otelcol-gateway")]
        hpa = objects[("HorizontalPodAutoscaler", "lumen-otelcol-gateway")]
        pdb = objects[("PodDisruptionBudget", "lumen-otelcol-gateway")]
        selector = deployment["spec"]["selector"]["matchLabels"]
        assert (True, True, selector, {"lumen-observability"}) == (
            deployment["spec"]["replicas"] >= 2,
            hpa["spec"]["minReplicas"] >= 2,
            pdb["spec"]["selector"]["matchLabels"],
            {o["metadata"].get("namespace") for k, o in objects.items() if k[0] != "Namespace"},
        )

    def test_config_checksum_rolls_the_pods(self) -> None:
        """The pod template carries the config's checksum, so a config change restarts the gateway."""
        deployment = _by_kind(_build(K8S / "overlays" / "dev"))[("Deployment", "lumen-otelcol-gateway")]
        annotation = deployment["spec"]["template"]["metadata"]["annotations"]["lumen-otel/config-sha256"]
        assert re.fullmatch(r"[0-9a-f]{64}", annotation)


class TestGatewayMatchesTheCollectorConfig:
    """The Deployment and the config it mounts agree (ports, probes, memory, TLS paths)."""

    def _container(self) -> dict[str, Any]:
        deployment = load_yaml(K8S / "base" / "gateway-deployment.yaml")
        return dict(deployment["spec"]["template"]["spec"]["containers"][0])

    def test_probes_hit_the_health_check_extension(self) -> None:
        container = self._container()
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        health_port = _listen_port(
            self._resolved(_gateway_config()["extensions"]["health_check"]["endpoint"])
        )
        probes = {
            probe: ports[container[probe]["httpGet"]["port"]] for probe in ("livenessProbe", "readinessProbe")
        }
        assert {"livenessProbe": health_port, "readinessProbe": health_port} == probes

    def test_health_check_and_telemetry_listen_beyond_loopback(self) -> None:
        """Kubelet probes and Prometheus come from outside the pod: loopback listeners would fail them."""
        telemetry = _gateway_config()["service"]["telemetry"]["metrics"]["readers"][0]["pull"]["exporter"]
        assert "0.0.0.0" == self._resolved(telemetry["prometheus"]["host"])
        endpoint = self._resolved(_gateway_config()["extensions"]["health_check"]["endpoint"])
        assert not endpoint.startswith(("localhost:", "127.0.0.1:")), endpoint

    def test_service_exposes_the_otlp_ports_the_receivers_listen_on(self) -> None:
        protocols = _gateway_config()["receivers"]["otlp"]["protocols"]
        listen = {
            _listen_port(self._resolved(protocols["grpc"]["endpoint"])),
            _listen_port(self._resolved(protocols["http"]["endpoint"])),
        }
        service = load_yaml(K8S / "base" / "gateway-service.yaml")
        assert ({4317, 4318}, {4317, 4318}) == (listen, {p["port"] for p in service["spec"]["ports"]})

    def _resolved(self, value: object) -> str:
        """A gateway.yaml value with ${env:NAME:-default} filled from the Deployment's env."""
        env = {e["name"]: e.get("value") for e in self._container()["env"]}
        return re.sub(
            r"\$\{env:([A-Za-z0-9_]+)(?::-([^}]*))?\}",
            lambda m: str(env.get(m.group(1)) or m.group(2) or ""),
            str(value),
        )

    def test_memory_limit_leaves_headroom_above_the_memory_limiter(self) -> None:
        """memory_limiter refuses data before the container limit, and GOMEMLIMIT sits between the two."""
        limiter = next(
            v for k, v in _gateway_config()["processors"].items() if k.split("/")[0] == "memory_limiter"
        )
        container = self._container()
        limit = _mib(container["resources"]["limits"]["memory"])
        gomemlimit = _mib(next(e["value"] for e in container["env"] if e["name"] == "GOMEMLIMIT"))
        if "limit_mib" in limiter:
            hard = float(self._resolved(limiter["limit_mib"]))
        else:
            hard = limit * float(self._resolved(limiter["limit_percentage"])) / 100
        assert (True, True) == (hard <= 0.9 * limit, hard <= gomemlimit < limit), (hard, gomemlimit, limit)

    def test_tls_files_come_from_the_mounted_secret(self) -> None:
        """The collector's TLS variables point into the Secret mount."""
        container = self._container()
        mount = next(m["mountPath"] for m in container["volumeMounts"] if m["name"] == "tls")
        env = {e["name"]: e.get("value") for e in container["env"]}
        names = (
            "LUMEN_COLLECTOR_TLS_CERT_FILE",
            "LUMEN_COLLECTOR_TLS_KEY_FILE",
            "LUMEN_COLLECTOR_CLIENT_CA_FILE",
        )
        assert {n: True for n in names} == {n: str(env[n]).startswith(mount + "/") for n in names}

    def test_every_variable_the_config_reads_is_set(self) -> None:
        """Each ${env:NAME} in gateway.yaml without a default is set by the Deployment."""
        text = (COLLECTOR_CONFIG / "gateway.yaml").read_text(encoding="utf-8")
        required = set(re.findall(r"\$\{env:([A-Z0-9_]+)\}", text))
        env = {e["name"] for e in self._container()["env"]}
        assert set() == required - env


class TestAgentMatchesItsConfig:
    def test_memory_limit_leaves_headroom_above_the_memory_limiter(self) -> None:
        daemonset = load_yaml(K8S / "components" / "agent" / "agent-daemonset.yaml")
        container = daemonset["spec"]["template"]["spec"]["containers"][0]
        limiter = load_yaml(K8S / "components" / "agent" / "agent.yaml")["processors"]["memory_limiter"]
        limit = _mib(container["resources"]["limits"]["memory"])
        gomemlimit = _mib(next(e["value"] for e in container["env"] if e["name"] == "GOMEMLIMIT"))
        hard = limit * float(limiter["limit_percentage"]) / 100
        assert (True, True) == (hard <= 0.9 * limit, hard <= gomemlimit < limit), (hard, gomemlimit, limit)

    def test_probes_and_ports_match_the_agent_config(self) -> None:
        daemonset = load_yaml(K8S / "components" / "agent" / "agent-daemonset.yaml")
        container = daemonset["spec"]["template"]["spec"]["containers"][0]
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        config = load_yaml(K8S / "components" / "agent" / "agent.yaml")
        protocols = config["receivers"]["otlp"]["protocols"]
        assert {"otlp-grpc": 4317, "otlp-http": 4318, "health": 13133} == {
            "otlp-grpc": _listen_port(protocols["grpc"]["endpoint"]),
            "otlp-http": _listen_port(protocols["http"]["endpoint"]),
            "health": _listen_port(config["extensions"]["health_check"]["endpoint"]),
        }
        assert (ports["health"], ports["health"]) == tuple(
            ports[container[probe]["httpGet"]["port"]] for probe in ("livenessProbe", "readinessProbe")
        )


class TestNetworkPolicy:
    def test_only_the_services_namespace_reaches_the_otlp_ports(self) -> None:
        policy = load_yaml(K8S / "base" / "gateway-networkpolicy.yaml")
        otlp_rules = [
            rule["from"]
            for rule in policy["spec"]["ingress"]
            if {p["port"] for p in rule["ports"]} & {"otlp-grpc", "otlp-http", 4317, 4318}
        ]
        assert [
            [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "lumen-services"}}}]
        ] == (otlp_rules)


class TestHelmValues:
    def test_loki_runs_simple_scalable_with_structured_metadata(self) -> None:
        values = load_yaml(K8S / "helm" / "loki-values.yaml")
        assert ("SimpleScalable", True, "v13") == (
            values["deploymentMode"],
            values["loki"]["limits_config"]["allow_structured_metadata"],
            values["loki"]["schemaConfig"]["configs"][-1]["schema"],
        )

    def test_prometheus_accepts_remote_write_and_mounts_the_lumen_rules(self) -> None:
        values = load_yaml(K8S / "helm" / "prometheus-values.yaml")
        mounts = {m["configMap"]: m["mountPath"] for m in values["server"]["extraConfigmapMounts"]}
        rule_files = values["serverFiles"]["prometheus.yml"]["rule_files"]
        assert (True, True) == (
            "web.enable-remote-write-receiver" in values["server"]["extraFlags"],
            f"{mounts['lumen-prometheus-rules']}/*.yaml" in rule_files,
        )

    def test_grafana_mounts_the_generated_configmaps(self) -> None:
        values = load_yaml(K8S / "helm" / "grafana-values.yaml")
        generated = {
            d["metadata"]["name"]
            for d in load_yaml_documents(K8S / "base" / "generated" / "grafana-configmaps.yaml")
        }
        used = {m["configMap"] for m in values["extraConfigmapMounts"]} | set(
            values["dashboardsConfigMaps"].values()
        )
        assert generated == used
