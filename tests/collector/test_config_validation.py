"""Every config in collector-config/ passes `lumen-otelcol validate`; broken ones do not."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from tests.collector.conftest import CONFIG_DIR, TLSFiles, base_env

pytestmark = pytest.mark.collector

KEY = "k" * 32  # the redaction processor's minimum for hmac-sha256

#: each runnable combination of files, with the variables it needs beyond the defaults
CONFIG_SETS: dict[str, tuple[list[str], dict[str, str]]] = {
    "gateway": (["gateway.yaml"], {}),
    "gateway+keyed": (["gateway.yaml", "gateway-keyed.yaml"], {"LUMEN_REDACTION_KEY": KEY}),
    "gateway+traces": (["gateway.yaml", "gateway-traces.yaml"], {"TRACES_OTLP_ENDPOINT": "127.0.0.1:4317"}),
    "gateway+keyed+traces": (
        ["gateway.yaml", "gateway-keyed.yaml", "gateway-traces.yaml"],
        {"LUMEN_REDACTION_KEY": KEY, "TRACES_OTLP_ENDPOINT": "127.0.0.1:4317"},
    ),
    "gateway+search": (["gateway.yaml", "gateway-search.yaml"], {}),
    "local": (["local.yaml"], {}),
}

NOT_COLLECTOR_CONFIGS = {"builder.yaml"}


def validate(
    binary: Path, configs: list[str | Path], env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    argv = [str(binary), "validate"]
    argv += [f"--config={CONFIG_DIR / c if isinstance(c, str) else c}" for c in configs]
    return subprocess.run(argv, env=base_env(**env), capture_output=True, text=True, timeout=60, check=False)


def tls_env(tls: TLSFiles) -> dict[str, str]:
    return {
        "LUMEN_COLLECTOR_TLS_CERT_FILE": str(tls.server_cert),
        "LUMEN_COLLECTOR_TLS_KEY_FILE": str(tls.server_key),
    }


class TestShippedConfigsValidate:
    @pytest.mark.parametrize("name", sorted(CONFIG_SETS))
    def test_config_set_validates(self, collector_bin: Path, tls_files: TLSFiles, name: str) -> None:
        configs, env = CONFIG_SETS[name]
        result = validate(collector_bin, list(configs), {**tls_env(tls_files), **env})
        assert (0, "") == (result.returncode, result.stderr)

    def test_every_yaml_in_collector_config_is_validated(self) -> None:
        """A new config file must be added to CONFIG_SETS (or it would never be checked)."""
        shipped = {p.name for p in CONFIG_DIR.glob("*.yaml")} - NOT_COLLECTOR_CONFIGS
        covered = {name for configs, _ in CONFIG_SETS.values() for name in configs}
        assert shipped == covered

    def test_local_uses_the_same_redaction_and_counting_as_the_gateway(self) -> None:
        """local.yaml copies the gateway's processors and connectors; they must not drift apart."""
        gateway = yaml.safe_load((CONFIG_DIR / "gateway.yaml").read_text(encoding="utf-8"))
        local = yaml.safe_load((CONFIG_DIR / "local.yaml").read_text(encoding="utf-8"))
        assert (gateway["processors"], gateway["connectors"]) == (local["processors"], local["connectors"])


class TestBrokenConfigsFail:
    def test_a_look_ahead_in_a_transform_pattern_is_rejected(
        self, collector_bin: Path, tmp_path: Path
    ) -> None:
        """Go's RE2 has no look-arounds: a PCRE-style rule must fail validation, not start silently."""
        text = (CONFIG_DIR / "gateway.yaml").read_text(encoding="utf-8")
        broken = text.replace(
            '"\\\\b\\\\d{3}[- ]\\\\d{2}[- ]\\\\d{4}\\\\b"', '"(?<!\\\\d)\\\\d{3}-\\\\d{2}-\\\\d{4}"', 1
        )
        assert broken != text
        path = tmp_path / "broken.yaml"
        path.write_text(broken, encoding="utf-8")
        result = validate(collector_bin, [path], {})
        assert (1, True) == (result.returncode, "is not a valid pattern" in result.stderr)

    def test_a_pipeline_naming_an_undefined_exporter_is_rejected(
        self, collector_bin: Path, tmp_path: Path
    ) -> None:
        config = yaml.safe_load((CONFIG_DIR / "gateway.yaml").read_text(encoding="utf-8"))
        config["service"]["pipelines"]["logs"]["exporters"] = ["otlp_http/loki", "otlp_http/nowhere"]
        path = tmp_path / "broken.yaml"
        path.write_text(yaml.safe_dump(config), encoding="utf-8")
        result = validate(collector_bin, [path], {})
        assert (1, True) == (result.returncode, "otlp_http/nowhere" in result.stderr)

    def test_the_keyed_overlay_without_a_key_is_rejected(self, collector_bin: Path) -> None:
        """Asking for keyed pseudonyms and forgetting LUMEN_REDACTION_KEY must not fall back to anything."""
        result = validate(collector_bin, ["gateway.yaml", "gateway-keyed.yaml"], {})
        assert (1, True) == (result.returncode, "hmac_key must not be empty" in result.stderr)

    def test_the_keyed_overlay_with_a_short_key_is_rejected(self, collector_bin: Path) -> None:
        result = validate(
            collector_bin, ["gateway.yaml", "gateway-keyed.yaml"], {"LUMEN_REDACTION_KEY": "short"}
        )
        assert (1, True) == (result.returncode, "at least 32 bytes" in result.stderr)

    def test_the_traces_overlay_without_an_endpoint_is_rejected(self, collector_bin: Path) -> None:
        result = validate(collector_bin, ["gateway.yaml", "gateway-traces.yaml"], {})
        assert (1, True) == (result.returncode, 'requires a non-empty "endpoint"' in result.stderr)
