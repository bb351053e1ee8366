"""Every collector config that deploy/ mounts passes `lumen-otelcol validate` (the real binary)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from tests.deploy.conftest import (
    COMPOSE_DIR,
    K8S,
    REPO,
    Certificates,
    collector_binary,
    collector_env,
    kustomize,
    kustomize_overlays,
    load_yaml,
)

pytestmark = pytest.mark.collector

GENERATOR = REPO / "scripts" / "gen-k8s-configmaps.py"


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_k8s_configmaps", GENERATOR)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def _mounted_sources() -> dict[str, dict[str, Path]]:
    """ConfigMap name -> {key: source file} for the collector ConfigMaps the generator writes."""
    generator = _generator()
    return {
        part.name: dict(part.sources)
        for parts in generator._outputs().values()
        for part in parts
        if isinstance(part, generator.ConfigMapSpec) and part.name.startswith("lumen-otelcol")
    }


def _config_args(container: dict[str, Any]) -> list[str]:
    return [
        a.split("=", 1)[1]
        for a in [*container.get("command", []), *container.get("args", [])]
        if a.startswith("--config=")
    ]


def compose_config_sets() -> dict[str, list[Path]]:
    collector = load_yaml(COMPOSE_DIR / "compose.yaml")["services"]["collector"]
    mounts = {v.split(":")[1]: (COMPOSE_DIR / v.split(":")[0]).resolve() for v in collector["volumes"]}
    return {"compose collector": [mounts[path] for path in _config_args(collector)]}


def kubernetes_config_sets(objects: list[dict[str, Any]], origin: str) -> dict[str, list[Path]]:
    """For each collector workload: the source files of the configs its container is started with."""
    sources = _mounted_sources()
    sets: dict[str, list[Path]] = {}
    for obj in objects:
        if obj.get("kind") not in {"Deployment", "DaemonSet"}:
            continue
        spec = obj["spec"]["template"]["spec"]
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        for container in spec["containers"]:
            mounts = {
                m["mountPath"]: volumes[m["name"]]["configMap"]["name"]
                for m in container.get("volumeMounts", [])
                if "configMap" in volumes[m["name"]]
            }
            files = []
            for path in _config_args(container):
                directory, key = path.rsplit("/", 1)
                configmap = mounts[directory]
                files.append(sources[configmap][key])
            sets[f"{origin} {obj['kind']}/{obj['metadata']['name']}"] = files
    return sets


def _validate(configs: list[Path], certs: Certificates) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(collector_binary()), "validate", *[f"--config={c}" for c in configs]],
        env=collector_env(configs, certs),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _failures(sets: dict[str, list[Path]], certs: Certificates) -> dict[str, str]:
    failures = {}
    for origin, configs in sets.items():
        result = _validate(configs, certs)
        if result.returncode != 0:
            failures[origin] = result.stdout + result.stderr
    return failures


def _base_objects() -> list[dict[str, Any]]:
    return [
        load_yaml(K8S / "base" / "gateway-deployment.yaml"),
        load_yaml(K8S / "components" / "agent" / "agent-daemonset.yaml"),
    ]


class TestMountedConfigs:
    def test_compose_and_kubernetes_start_the_gateway_and_the_agent(self) -> None:
        """What deploy/ runs: gateway.yaml (compose, Kubernetes) and the node agent's config."""
        sets = {**compose_config_sets(), **kubernetes_config_sets(_base_objects(), "base")}
        gateway = REPO / "collector-config" / "gateway.yaml"
        agent = K8S / "components" / "agent" / "agent.yaml"
        assert {
            "compose collector": [gateway],
            "base Deployment/lumen-otelcol-gateway": [gateway],
            "base DaemonSet/lumen-otelcol-agent": [agent],
        } == sets

    def test_compose_and_base_configs_pass_lumen_otelcol_validate(self, session_certs: Certificates) -> None:
        sets = {**compose_config_sets(), **kubernetes_config_sets(_base_objects(), "base")}
        assert {} == _failures(sets, session_certs)

    def test_each_overlays_configs_pass_lumen_otelcol_validate(self, session_certs: Certificates) -> None:
        """What `kustomize build` starts, with the files layered on gateway.yaml (prod: keyed)."""
        sets: dict[str, list[Path]] = {}
        for overlay in kustomize_overlays():
            built = subprocess.run(
                [str(kustomize()), "build", str(overlay)],
                capture_output=True,
                text=True,
                timeout=120,
                check=True,
            ).stdout
            sets.update(kubernetes_config_sets(list(yaml.safe_load_all(built)), f"overlay {overlay.name}"))
        assert [
            REPO / "collector-config" / "gateway.yaml",
            REPO / "collector-config" / "gateway-keyed.yaml",
        ] == sets["overlay prod Deployment/lumen-otelcol-gateway"]
        assert {} == _failures(sets, session_certs)

    def test_a_broken_config_fails_validate(self, tmp_path: Path, session_certs: Certificates) -> None:
        """The check is real: a pipeline naming a processor that is not configured is rejected."""
        broken = tmp_path / "agent.yaml"
        text = (K8S / "components" / "agent" / "agent.yaml").read_text(encoding="utf-8")
        broken.write_text(
            text.replace("processors: [memory_limiter, resource/node, batch]", "processors: [nonesuch]", 1)
        )
        assert 0 != _validate([broken], session_certs).returncode
