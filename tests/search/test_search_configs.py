"""gateway-search.yaml, the index template and the retention policies (collector-config/search/).

The overlay is validated by the real binary, alone and with the other overlays; the template is
installed into the real node by collector-config/search/install.sh and a would-be backing index's
mapping is read back; the ISM and ILM policies say the same thing (the test node has no ISM plugin,
so their content is checked here and their installation in a full distribution is documented).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from lumen_otel.cli._search import DEFAULT_INDEX
from tests.collector.conftest import CONFIG_DIR, TLSFiles
from tests.collector.test_config_validation import KEY, tls_env, validate
from tests.search.conftest import SEARCH_CONFIG, OpenSearchNode, install_templates

OVERLAY = CONFIG_DIR / "gateway-search.yaml"
SEARCH_ENV = {"OPENSEARCH_ENDPOINT": "http://127.0.0.1:9200"}


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _json(name: str) -> Any:
    return json.loads((SEARCH_CONFIG / name).read_text(encoding="utf-8"))


@pytest.mark.collector
class TestOverlayValidates:
    @pytest.mark.parametrize(
        ("configs", "env"),
        [
            (["gateway.yaml", "gateway-search.yaml"], {}),
            (["gateway.yaml", "gateway-search.yaml"], SEARCH_ENV),
            (
                ["gateway.yaml", "gateway-keyed.yaml", "gateway-traces.yaml", "gateway-search.yaml"],
                {**SEARCH_ENV, "LUMEN_REDACTION_KEY": KEY, "TRACES_OTLP_ENDPOINT": "127.0.0.1:4317"},
            ),
        ],
        ids=["defaults", "endpoint", "with-keyed-and-traces"],
    )
    def test_config_set_validates(
        self, collector_bin: Path, tls_files: TLSFiles, configs: list[str], env: dict[str, str]
    ) -> None:
        result = validate(collector_bin, list(configs), {**tls_env(tls_files), **env})
        assert (0, "") == (result.returncode, result.stderr)

    @pytest.mark.parametrize(
        ("env", "message"),
        [
            ({"OPENSEARCH_LOGS_INDEX": "Logs*Lumen"}, "is not a valid index or data stream name"),
            ({"OPENSEARCH_PASSWORD": "secret"}, "password is set but user is empty"),
        ],
    )
    def test_a_wrong_setting_is_rejected(
        self, collector_bin: Path, tls_files: TLSFiles, env: dict[str, str], message: str
    ) -> None:
        result = validate(
            collector_bin, ["gateway.yaml", "gateway-search.yaml"], {**tls_env(tls_files), **env}
        )
        assert 0 != result.returncode
        assert message in result.stderr

    def test_the_distribution_has_the_exporter(self, collector_bin: Path) -> None:
        import subprocess

        components = subprocess.run(
            [str(collector_bin), "components"], capture_output=True, text=True, timeout=60, check=True
        ).stdout
        exporters = yaml.safe_load(components)["exporters"]
        assert "lumen_search" in {e["name"] for e in exporters}


class TestOverlayShape:
    def test_adds_an_exporter_to_the_redacted_logs_pipeline_and_nothing_else(self) -> None:
        """Same processors as Loki's path (not restated, so not replaced); Loki keeps its exporter."""
        overlay, gateway = _yaml(OVERLAY), _yaml(CONFIG_DIR / "gateway.yaml")
        assert {"exporters", "service"} == set(overlay)
        assert {
            "pipelines": {
                "logs": {"exporters": [*gateway["service"]["pipelines"]["logs"]["exporters"], "lumen_search"]}
            }
        } == overlay["service"]
        assert "redaction" in gateway["service"]["pipelines"]["logs"]["processors"]
        assert ["lumen_search"] == list(overlay["exporters"])

    def test_every_variable_has_a_default(self) -> None:
        """The overlay validates with no search variable set (compose, Kubernetes, the deploy tests)."""
        text = OVERLAY.read_text(encoding="utf-8")
        refs = re.findall(r"\$\{env:([A-Z0-9_]+)(:-[^}]*)?\}", text)
        assert refs and [] == [name for name, default in refs if not default]

    def test_the_default_index_is_what_the_template_and_the_cli_read(self) -> None:
        index = _yaml(OVERLAY)["exporters"]["lumen_search"]["logs_index"]
        default = re.fullmatch(r"\$\{env:OPENSEARCH_LOGS_INDEX:-([a-z0-9-]+)\}", index)
        assert default is not None
        pattern = _json("index-template.json")["index_patterns"]
        assert ["logs-lumen-*"] == pattern == [DEFAULT_INDEX]
        assert default.group(1).startswith("logs-lumen-")


class TestTemplateAndRetention:
    def test_the_template_maps_the_identifiers_as_keywords_and_the_message_as_text(self) -> None:
        template = _json("index-template.json")
        properties = template["template"]["mappings"]["properties"]
        keywords = [
            "service_name",
            "correlation_id",
            "trace_id",
            "span_id",
            "level",
            "severity_text",
            "logger",
        ]
        assert {name: "keyword" for name in keywords} == {name: properties[name]["type"] for name in keywords}
        assert "text" == properties["message"]["type"]
        assert "keyword" == properties["message"]["fields"]["keyword"]["type"]
        assert {} == template["data_stream"]
        assert ["lumen-logs-lifecycle"] == template["composed_of"]

    def test_ism_and_ilm_roll_over_and_delete_alike(self) -> None:
        ism = _json("ism-policy.json")["policy"]
        ilm = _json("ilm-policy.json")["policy"]
        states = {s["name"]: s for s in ism["states"]}
        assert "hot" == ism["default_state"]
        (rollover,) = states["hot"]["actions"]
        (transition,) = states["hot"]["transitions"]
        assert ("delete", [{"delete": {}}]) == (transition["state_name"], states["delete"]["actions"])
        assert rollover["rollover"]["min_index_age"] == ilm["phases"]["hot"]["actions"]["rollover"]["max_age"]
        assert transition["conditions"]["min_rollover_age"] == ilm["phases"]["delete"]["min_age"] == "30d"
        assert {"delete": {}} == ilm["phases"]["delete"]["actions"]
        # ISM attaches itself to the data stream's backing indices; ILM is named by the template
        (ism_template,) = ism["ism_template"]
        assert [".ds-logs-lumen-*"] == ism_template["index_patterns"]
        lifecycle = _json("component-lifecycle-elasticsearch.json")["template"]["settings"]
        assert {"index.lifecycle.name": "lumen-logs"} == lifecycle
        assert {} == _json("component-lifecycle-opensearch.json")["template"]


@pytest.mark.search
@pytest.mark.integration
class TestInstallScript:
    def test_installs_the_template_and_a_new_stream_gets_its_mapping(
        self, opensearch: OpenSearchNode
    ) -> None:
        for _ in range(2):  # a second run updates in place
            result = install_templates(opensearch)
            assert 0 == result.returncode, result.stdout + result.stderr
        assert "is opensearch" in result.stdout
        installed = opensearch.request("GET", "/_index_template/lumen-logs")["index_templates"]
        assert ["logs-lumen-*"] == installed[0]["index_template"]["index_patterns"]
        simulated = opensearch.request("POST", "/_index_template/_simulate_index/logs-lumen-simulated")
        properties = simulated["template"]["mappings"]["properties"]
        assert ("keyword", "text", "date_nanos") == (
            properties["correlation_id"]["type"],
            properties["message"]["type"],
            properties["@timestamp"]["type"],
        )

    def test_a_node_without_ism_makes_the_policy_step_fail_loudly(self, opensearch: OpenSearchNode) -> None:
        """The test node has no ISM plugin: without --no-policy the script stops with the node's answer."""
        import os
        import subprocess

        result = subprocess.run(
            ["bash", str(SEARCH_CONFIG / "install.sh"), opensearch.url],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
        )
        assert 0 != result.returncode
        assert "_plugins/_ism/policies/lumen-logs" in result.stderr
