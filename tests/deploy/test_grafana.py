"""deploy/grafana/: provisioned data sources, the "Lumen services" dashboard, and what its queries name."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tests.deploy.conftest import (
    COLLECTOR_TELEMETRY_LABELS,
    COLLECTOR_TELEMETRY_SERIES,
    GRAFANA,
    LOKI_OTLP_FIELDS,
    PROMETHEUS_BUILTIN_LABELS,
    RULES_DIR,
    ProducedSeries,
    load_yaml,
    logql_labels,
    produced_series,
    promql_names,
)

DASHBOARD = GRAFANA / "dashboards" / "lumen-services.json"
DATASOURCES = GRAFANA / "provisioning" / "datasources" / "lumen.yaml"
# Record attributes lumen-otel sets that Loki keeps as structured metadata.
LOKI_RECORD_ATTRIBUTES = frozenset({"correlation_id"})
# Families of the collector's internal metrics: a __name__ regex must match one of them.
_FAMILY_SUFFIXES = (
    "log_records",
    "spans",
    "metric_points",
    "log_records_total",
    "spans_total",
    "metric_points_total",
)


def _dashboard() -> dict[str, Any]:
    return dict(json.loads(DASHBOARD.read_text(encoding="utf-8")))


def _datasources() -> dict[str, dict[str, Any]]:
    return {ds["uid"]: ds for ds in load_yaml(DATASOURCES)["datasources"]}


def _panels() -> list[dict[str, Any]]:
    return [p for p in _dashboard()["panels"] if p["type"] != "row"]


def _queries(kind: str) -> list[tuple[str, str]]:
    """(panel title, expression) for every target of a data source type."""
    return [
        (panel["title"], target["expr"])
        for panel in _panels()
        for target in panel["targets"]
        if target["datasource"]["type"] == kind
    ]


def _recording_rules() -> set[str]:
    return {
        rule["record"]
        for path in RULES_DIR.glob("*.yaml")
        for group in load_yaml(path)["groups"]
        for rule in group["rules"]
        if "record" in rule
    }


def _known_metric(name: str, produced: ProducedSeries, extra: frozenset[str]) -> bool:
    if name in produced.metrics or name in extra or name in COLLECTOR_TELEMETRY_SERIES:
        return True
    if any(name.startswith(p) for p in produced.metric_prefixes):
        return True
    # The collector serves its own counters without the _total suffix (measured at v0.161 by
    # test_stack.py); METRICS.md may list them with it.
    return name.startswith("otelcol_") and f"{name.removesuffix('_total')}_total" in produced.metrics


def unknown_names(
    expr: str, produced: ProducedSeries, extra_metrics: frozenset[str] = frozenset()
) -> list[str]:
    """The metric and label names in ``expr`` that the collector does not produce."""
    names = promql_names(expr)
    unknown = [f"metric {m}" for m in sorted(names.metrics) if not _known_metric(m, produced, extra_metrics)]
    candidates = set(produced.metrics) | {p + s for p in produced.metric_prefixes for s in _FAMILY_SUFFIXES}
    candidates |= {m.removesuffix("_total") for m in produced.metrics if m.startswith("otelcol_")}
    candidates |= COLLECTOR_TELEMETRY_SERIES
    unknown += [
        f"__name__ regex {r}"
        for r in sorted(names.name_regexes)
        if not any(re.fullmatch(r, c) for c in candidates)
    ]
    allowed = produced.labels | PROMETHEUS_BUILTIN_LABELS
    if any(m.startswith("otelcol_") for m in names.metrics) or names.name_regexes:
        allowed |= COLLECTOR_TELEMETRY_LABELS
    unknown += [f"label {label}" for label in sorted(names.labels) if label not in allowed]
    return unknown


class TestDashboard:
    def test_loads_as_the_lumen_services_dashboard(self) -> None:
        dashboard = _dashboard()
        assert ("lumen-services", "Lumen services") == (dashboard["uid"], dashboard["title"])

    def test_panel_ids_are_unique_and_panels_do_not_overlap(self) -> None:
        panels = _dashboard()["panels"]
        cells = [
            (x, y)
            for p in panels
            for x in range(p["gridPos"]["x"], p["gridPos"]["x"] + p["gridPos"]["w"])
            for y in range(p["gridPos"]["y"], p["gridPos"]["y"] + p["gridPos"]["h"])
        ]
        assert (len(panels), len(cells)) == (len({p["id"] for p in panels}), len(set(cells)))

    def test_has_the_panels_the_issue_asks_for(self) -> None:
        """Log volume, error/warning counters, request rate, error ratio, latency quantiles, latest errors."""
        titles = {p["title"]: p["type"] for p in _panels()}
        assert {
            "Log volume by service and level": "timeseries",
            "Error log lines": "stat",
            "Warning log lines": "stat",
            "Request rate": "timeseries",
            "Error ratio": "timeseries",
            "Latency p50 / p95 / p99": "timeseries",
            "Latest error lines": "logs",
        }.items() <= titles.items()

    def test_latency_panel_shows_p50_p95_p99(self) -> None:
        panel = next(p for p in _panels() if p["title"].startswith("Latency"))
        quantiles = [re.match(r"histogram_quantile\(([\d.]+),", t["expr"]).group(1) for t in panel["targets"]]  # type: ignore[union-attr]
        assert ["0.50", "0.95", "0.99"] == quantiles

    def test_every_panel_uses_a_provisioned_data_source(self) -> None:
        uids = set(_datasources())
        used = {t["datasource"]["uid"] for p in _panels() for t in p["targets"]} | {
            p["datasource"]["uid"] for p in _panels()
        }
        assert set() == used - uids

    def test_every_prometheus_query_names_series_the_collector_produces(self) -> None:
        """Each metric and label in the dashboard's PromQL is listed in collector-config/METRICS.md."""
        produced = produced_series()
        unknown = {title: u for title, expr in _queries("prometheus") if (u := unknown_names(expr, produced))}
        assert {} == unknown

    def test_service_variable_reads_a_produced_label(self) -> None:
        produced = produced_series()
        variable = next(v for v in _dashboard()["templating"]["list"] if v["name"] == "service")
        metric, label = re.fullmatch(r"label_values\((\w+),\s*(\w+)\)", variable["query"]["query"]).groups()  # type: ignore[union-attr]
        assert (True, True) == (metric in produced.metrics, label in produced.labels)

    def test_every_loki_query_names_fields_loki_keeps_from_otlp(self) -> None:
        """Loki panels select on service_name and filter on OTLP fields / record attributes only."""
        allowed = LOKI_OTLP_FIELDS | LOKI_RECORD_ATTRIBUTES
        unknown = {title: sorted(logql_labels(expr) - allowed) for title, expr in _queries("loki")}
        assert {title: [] for title in unknown} == unknown
        assert unknown, "the dashboard has no Loki panel"


class TestAlertRules:
    def test_every_rule_names_series_the_collector_produces(self) -> None:
        """Alert and recording rules only read series listed in METRICS.md (or recorded in the same files)."""
        produced = produced_series()
        recorded = _recording_rules()
        unknown = {
            rule.get("alert") or rule["record"]: u
            for path in RULES_DIR.glob("*.yaml")
            for group in load_yaml(path)["groups"]
            for rule in group["rules"]
            if (u := unknown_names(rule["expr"], produced, frozenset(recorded | {"up"})))
        }
        assert {} == unknown

    def test_alerts_cover_error_spikes_and_dropped_telemetry(self) -> None:
        alerts = {
            rule["alert"]: rule["expr"]
            for path in RULES_DIR.glob("*.yaml")
            for group in load_yaml(path)["groups"]
            for rule in group["rules"]
            if "alert" in rule
        }
        reads = " ".join(alerts.values())
        assert [] == [
            name
            for name in (
                "otelcol_exporter_",
                "otelcol_(processor|receiver)_refused_",
                "lumen_log_dropped_total",
                'severity="ERROR"',
            )
            if name not in reads
        ]


class TestDataSources:
    def test_loki_and_prometheus_with_fixed_uids(self) -> None:
        assert {"lumen-loki": "loki", "lumen-prometheus": "prometheus"} == {
            uid: ds["type"] for uid, ds in _datasources().items()
        }

    @pytest.mark.parametrize("field", ["correlation_id", "trace_id"])
    def test_derived_field_links_to_the_whole_request(self, field: str) -> None:
        """A log line's correlation_id / trace_id links to a Loki query for every line of that request."""
        derived = {d["name"]: d for d in _datasources()["lumen-loki"]["jsonData"]["derivedFields"]}[field]
        # $$ is how Grafana provisioning escapes a literal $ (the URL is a Grafana template).
        expected_query = '{service_name=~".+"} | ' + field + '="$${__value.raw}"'
        assert ("label", field, "lumen-loki", expected_query) == (
            derived["matcherType"],
            derived["matcherRegex"],
            derived["datasourceUid"],
            derived["url"],
        )
        assert {"service_name", field} == logql_labels(derived["url"].replace("$$", "$"))

    def test_the_collector_keeps_the_fields_the_links_follow(self) -> None:
        """gateway.yaml's redaction never touches correlation_id / trace_id, or the links would break."""
        from tests.deploy.conftest import COLLECTOR_CONFIG

        processors = load_yaml(COLLECTOR_CONFIG / "gateway.yaml")["processors"]
        ignored = {
            key
            for name, p in processors.items()
            if name.split("/")[0] == "redaction"
            for key in p.get("ignored_keys", [])
        }
        assert {"correlation_id", "trace_id", "service.name"} <= ignored

    def test_urls_come_from_the_environment(self) -> None:
        """One provisioning file for compose and Kubernetes: the URLs are ${LOKI_URL} / ${PROMETHEUS_URL}."""
        assert {"lumen-loki": "${LOKI_URL}", "lumen-prometheus": "${PROMETHEUS_URL}"} == {
            uid: ds["url"] for uid, ds in _datasources().items()
        }
