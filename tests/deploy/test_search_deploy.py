"""OpenSearch in deploy/: the compose profile, its override file and the Kubernetes component.

Neither changes the default stack: compose's search services sit behind the ``search`` profile and
only compose.search.yaml gives the collector gateway-search.yaml; the Kubernetes component is in
no overlay. What they start is validated with the real lumen-otelcol, as the other deploy configs are.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import yaml

from tests.deploy.conftest import COMPOSE_DIR, K8S, REPO, Certificates, kustomize, load_yaml
from tests.deploy.test_collector_configs import _failures, kubernetes_config_sets
from tests.deploy.test_compose import _validator

SEARCH_FILE = COMPOSE_DIR / "compose.search.yaml"
SEARCH_SERVICES = ["opensearch", "opensearch-dashboards", "opensearch-setup"]
GATEWAY = REPO / "collector-config" / "gateway.yaml"
OVERLAY = REPO / "collector-config" / "gateway-search.yaml"


def _services() -> dict[str, Any]:
    return dict(load_yaml(COMPOSE_DIR / "compose.yaml")["services"])


class TestComposeSearchProfile:
    def test_the_search_services_are_behind_the_profile(self) -> None:
        services = _services()
        assert SEARCH_SERVICES == sorted(n for n, s in services.items() if "search" in s.get("profiles", []))
        assert all(services[n]["profiles"] == ["search"] for n in SEARCH_SERVICES)

    def test_images_are_pinned_and_ports_on_loopback(self) -> None:
        services = _services()
        images = {services[n]["image"] for n in SEARCH_SERVICES}
        assert {
            "opensearchproject/opensearch:2.19.6",
            "opensearchproject/opensearch-dashboards:2.19.6",
        } == images
        ports = [p for n in SEARCH_SERVICES for p in services[n].get("ports", [])]
        assert ["127.0.0.1:9200:9200", "127.0.0.1:5601:5601"] == ports

    def test_the_setup_job_runs_the_shipped_install_script(self) -> None:
        setup = _services()["opensearch-setup"]
        (volume,) = setup["volumes"]
        source, target, _ = volume.split(":")
        assert (REPO / "collector-config" / "search").resolve() == (COMPOSE_DIR / source).resolve()
        assert ["bash", f"{target}/install.sh", "http://opensearch:9200"] == setup["entrypoint"]
        assert (COMPOSE_DIR / source / "install.sh").is_file()

    def test_the_override_gives_the_collector_the_overlay(self) -> None:
        override = load_yaml(SEARCH_FILE)
        assert [] == [f"{e.json_path}: {e.message}" for e in _validator().iter_errors(override)]
        collector = override["services"]["collector"]
        mounts = {v.split(":")[1]: (COMPOSE_DIR / v.split(":")[0]).resolve() for v in collector["volumes"]}
        configs = [a.split("=", 1)[1] for a in collector["command"]]
        base_mounts = {
            v.split(":")[1]: (COMPOSE_DIR / v.split(":")[0]).resolve()
            for v in _services()["collector"]["volumes"]
        }
        assert [GATEWAY, OVERLAY] == [{**base_mounts, **mounts}[c] for c in configs]
        assert "http://opensearch:9200" == collector["environment"]["OPENSEARCH_ENDPOINT"]
        assert {"opensearch-setup": {"condition": "service_completed_successfully"}} == collector[
            "depends_on"
        ]


class TestKubernetesSearchComponent:
    def _build(self, tmp_path: Path) -> list[dict[str, Any]]:
        overlay = tmp_path / "overlay"
        overlay.mkdir()
        up = os.path.relpath(K8S, overlay)  # kustomize takes no absolute paths
        (overlay / "kustomization.yaml").write_text(
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
            f"resources:\n  - {up}/base\ncomponents:\n  - {up}/components/search\n",
            encoding="utf-8",
        )
        built = subprocess.run(
            [str(kustomize()), "build", str(overlay)], capture_output=True, text=True, timeout=120, check=True
        ).stdout
        return list(yaml.safe_load_all(built))

    def test_the_component_is_in_no_overlay(self) -> None:
        for kustomization in sorted((K8S / "overlays").glob("*/kustomization.yaml")):
            assert "components/search" not in kustomization.read_text(encoding="utf-8"), kustomization

    def test_an_overlay_with_the_component_starts_the_gateway_with_the_overlay(
        self, tmp_path: Path, session_certs: Certificates
    ) -> None:
        objects = self._build(tmp_path)
        sets = kubernetes_config_sets(objects, "search")
        assert [GATEWAY, OVERLAY] == sets["search Deployment/lumen-otelcol-gateway"]
        assert {} == _failures(sets, session_certs)
        (deployment,) = [o for o in objects if o["kind"] == "Deployment"]
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        env = {e["name"]: e for e in container["env"]}
        assert {"name": "lumen-opensearch", "key": "password"} == env["OPENSEARCH_PASSWORD"]["valueFrom"][
            "secretKeyRef"
        ]
        assert env["OPENSEARCH_ENDPOINT"]["value"].startswith("https://")
        assert env["OPENSEARCH_CA_FILE"]["value"].startswith("/etc/lumen-otelcol/search-tls/")

    def test_the_generated_configmap_carries_the_overlay(self) -> None:
        docs = list(
            yaml.safe_load_all((K8S / "base" / "generated" / "collector-configmap.yaml").read_text("utf-8"))
        )
        (configmap,) = [d for d in docs if d["metadata"]["name"] == "lumen-otelcol-config"]
        assert OVERLAY.read_text(encoding="utf-8") == configmap["data"]["gateway-search.yaml"]
