"""deploy/prometheus/ and deploy/compose/prometheus.yml pass promtool (Debian's prometheus package)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.deploy.conftest import COMPOSE_DIR, DEPLOY, RULES_DIR, compose_prometheus_config, promtool

pytestmark = pytest.mark.prometheus

RULE_FILES = sorted(RULES_DIR.glob("*.yaml"))
RULE_TESTS = sorted((DEPLOY / "prometheus" / "tests").glob("*.yaml"))


def _promtool(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(promtool()), *args], capture_output=True, text=True, timeout=60, cwd=cwd, check=False
    )


class TestPromtool:
    @pytest.mark.parametrize("rules", RULE_FILES, ids=[p.name for p in RULE_FILES])
    def test_rule_file_passes_check_rules(self, rules: Path) -> None:
        result = _promtool("check", "rules", str(rules))
        assert 0 == result.returncode, result.stdout + result.stderr

    @pytest.mark.parametrize("tests", RULE_TESTS, ids=[p.name for p in RULE_TESTS])
    def test_alerts_fire_as_their_unit_tests_expect(self, tests: Path) -> None:
        """`promtool test rules`: each alert fires on the series that should raise it, and not before."""
        result = _promtool("test", "rules", tests.name, cwd=tests.parent)
        assert 0 == result.returncode, result.stdout + result.stderr

    def test_every_alert_has_a_unit_test(self) -> None:
        import yaml

        alerts = {
            rule["alert"]
            for path in RULE_FILES
            for group in yaml.safe_load(path.read_text(encoding="utf-8"))["groups"]
            for rule in group["rules"]
            if "alert" in rule
        }
        tested = {
            case["alertname"]
            for path in RULE_TESTS
            for test in yaml.safe_load(path.read_text(encoding="utf-8"))["tests"]
            for case in test.get("alert_rule_test", [])
        }
        assert set() == alerts - tested

    def test_compose_prometheus_yml_passes_check_config(self) -> None:
        result = _promtool("check", "config", str(COMPOSE_DIR / "prometheus.yml"))
        assert 0 == result.returncode, result.stdout + result.stderr

    def test_compose_config_with_its_rules_in_place_passes_check_config(self, tmp_path: Path) -> None:
        """With rule_files pointed at deploy/prometheus/rules (as compose mounts it), the rules load too."""
        config = compose_prometheus_config(tmp_path, {})
        result = _promtool("check", "config", str(config))
        assert (0, len(RULE_FILES)) == (result.returncode, result.stdout.count(" rules found")), (
            result.stdout + result.stderr
        )
