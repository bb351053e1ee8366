"""From entries to insights: templates per service and level, counted in a window and its baseline.

:class:`InsightsBuilder` feeds every entry of ``[baseline.since, window.until)`` to one
:class:`~lumen_otel.insights.drain.Drain` (grouped by service and level) and keeps, per
template, bounded statistics: counts in the window and in the baseline, a histogram of the
window in ``buckets`` buckets, a few example messages and correlation IDs. :meth:`build` turns
them into an :class:`Insights`: top templates per group, templates new since the baseline,
spikes (rate against the baseline's), and error templates. ``Insights.to_json`` is the
documented ``--json`` schema (``schema_version`` 1, see docs/insights.md).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from lumen_otel.insights.drain import Cluster, Drain
from lumen_otel.insights.sources import Entry

__all__ = [
    "ERROR_LEVELS",
    "SCHEMA_VERSION",
    "GroupSummary",
    "Insights",
    "InsightsBuilder",
    "TemplateInsight",
    "TimeRange",
    "rfc3339",
    "template_id",
]

SCHEMA_VERSION = 1
ERROR_LEVELS = frozenset({"ERROR", "CRITICAL"})
#: most severe first, for the order of groups within a service
_LEVEL_ORDER = {"CRITICAL": 0, "ERROR": 1, "WARNING": 2, "INFO": 3, "DEBUG": 4}
_SEP = "\x1f"  # between service and level in a Drain group key: never in either
EXAMPLE_CHARS = 500


def rfc3339(seconds: float) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class TimeRange:
    """``[since, until)`` in seconds since the epoch."""

    since: float
    until: float

    def __post_init__(self) -> None:
        if not self.until > self.since:
            raise ValueError("the end of a time range must come after its start")

    @property
    def seconds(self) -> float:
        return self.until - self.since

    def to_json(self) -> dict[str, Any]:
        return {"since": rfc3339(self.since), "until": rfc3339(self.until), "seconds": round(self.seconds, 3)}


class _Stats:
    """What is kept per template: bounded, whatever the number of lines."""

    __slots__ = ("baseline", "buckets", "cids", "count", "examples", "first", "last")

    def __init__(self, buckets: int) -> None:
        self.count = 0
        self.baseline = 0
        self.buckets = [0] * buckets
        self.examples: list[str] = []
        self.cids: list[str] = []
        self.first = float("inf")
        self.last = float("-inf")


@dataclass
class TemplateInsight:
    """One template of one service and level, as reported."""

    id: str
    service: str
    level: str
    template: str
    count: int
    baseline_count: int
    rate_ratio: float | None  # window rate / baseline rate; None when the baseline has none
    new: bool
    spike: bool
    buckets: list[int]
    examples: list[str]
    correlation_ids: list[str]
    first_seen: float | None
    last_seen: float | None

    @property
    def error(self) -> bool:
        return self.level in ERROR_LEVELS

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "service": self.service,
            "level": self.level,
            "template": self.template,
            "count": self.count,
            "baseline_count": self.baseline_count,
            "rate_ratio": None if self.rate_ratio is None else round(self.rate_ratio, 3),
            "new": self.new,
            "spike": self.spike,
            "error": self.error,
            "buckets": self.buckets,
            "examples": self.examples,
            "correlation_ids": self.correlation_ids,
            "first_seen": None if self.first_seen is None else rfc3339(self.first_seen),
            "last_seen": None if self.last_seen is None else rfc3339(self.last_seen),
        }


@dataclass
class GroupSummary:
    service: str
    level: str
    count: int
    baseline_count: int
    template_count: int
    templates: list[TemplateInsight]  # the top ones, most frequent first

    def to_json(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "level": self.level,
            "count": self.count,
            "baseline_count": self.baseline_count,
            "template_count": self.template_count,
            "top": [t.id for t in self.templates],
        }


@dataclass
class Insights:
    source: str
    window: TimeRange
    baseline: TimeRange | None
    bucket_count: int
    window_records: int
    baseline_records: int
    skipped: int
    templates_evicted: int
    groups: list[GroupSummary]
    templates: list[TemplateInsight]  # every template reported (top, new, spike, error), by id
    new: list[str] = field(default_factory=list)
    spikes: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    summary: dict[str, str] | None = None  # {"model", "text"} from the optional LLM

    def by_id(self) -> dict[str, TemplateInsight]:
        return {t.id: t for t in self.templates}

    def to_json(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "source": self.source,
            "window": {
                **self.window.to_json(),
                "buckets": self.bucket_count,
                "bucket_seconds": round(self.window.seconds / self.bucket_count, 3),
            },
            "baseline": None if self.baseline is None else self.baseline.to_json(),
            "records": {
                "window": self.window_records,
                "baseline": self.baseline_records,
                "skipped": self.skipped,
            },
            "templates_evicted": self.templates_evicted,
            "settings": self.settings,
            "groups": [g.to_json() for g in self.groups],
            "templates": [t.to_json() for t in self.templates],
            "new": self.new,
            "spikes": self.spikes,
            "errors": self.errors,
            "summary": self.summary,
        }


class InsightsBuilder:
    """Counts entries into templates; memory is bounded by ``max_templates``.

    Args:
        window: the time range reported on.
        baseline: the range compared against (usually just before the window), or None.
        buckets: histogram buckets over the window.
        max_templates: templates kept in all (least recently matched evicted beyond).
        examples: example messages kept per template (from the window).
        correlation_ids: distinct correlation IDs kept per template (from the window).
        sim_threshold, depth, max_children: Drain's parameters.
    """

    def __init__(
        self,
        window: TimeRange,
        baseline: TimeRange | None = None,
        *,
        buckets: int = 24,
        max_templates: int = 5000,
        examples: int = 3,
        correlation_ids: int = 5,
        sim_threshold: float = 0.4,
        depth: int = 4,
        max_children: int = 100,
    ) -> None:
        if buckets < 1:
            raise ValueError("buckets must be at least 1")
        self.window = window
        self.baseline = baseline
        self.bucket_count = buckets
        self.max_examples = examples
        self.max_cids = correlation_ids
        self._stats: dict[int, _Stats] = {}
        self._groups: dict[str, list[int]] = {}  # group -> [window count, baseline count]
        self.drain = Drain(
            depth=depth,
            sim_threshold=sim_threshold,
            max_children=max_children,
            max_clusters=max_templates,
            on_evict=self._evicted,
        )
        self.ignored = 0  # entries outside both ranges
        self.settings = {
            "sim_threshold": sim_threshold,
            "depth": depth,
            "max_children": max_children,
            "max_templates": max_templates,
        }

    @property
    def since(self) -> float:
        """Where reading should start: the earlier of the baseline's and the window's start."""
        return min(self.window.since, self.baseline.since) if self.baseline else self.window.since

    @property
    def until(self) -> float:
        return max(self.window.until, self.baseline.until) if self.baseline else self.window.until

    def _evicted(self, cluster: Cluster) -> None:
        self._stats.pop(cluster.id, None)  # the group totals keep its lines

    def add_all(self, entries: Iterable[Entry]) -> None:
        add = self.add
        for entry in entries:
            add(*entry)

    def add(self, when: float, service: str, level: str, message: str, correlation_id: str | None) -> None:
        window = self.window
        in_window = window.since <= when < window.until
        if not in_window:
            baseline = self.baseline
            if baseline is None or not baseline.since <= when < baseline.until:
                self.ignored += 1
                return
        group = service + _SEP + level
        cluster = self.drain.add_message(message, group)
        stats = self._stats.get(cluster.id)
        if stats is None:
            stats = self._stats[cluster.id] = _Stats(self.bucket_count)
        totals = self._groups.get(group)
        if totals is None:
            totals = self._groups[group] = [0, 0]
        if not in_window:
            stats.baseline += 1
            totals[1] += 1
            return
        totals[0] += 1
        stats.count += 1
        index = int((when - window.since) * self.bucket_count / window.seconds)
        stats.buckets[min(index, self.bucket_count - 1)] += 1
        stats.first = min(stats.first, when)
        stats.last = max(stats.last, when)
        if len(stats.examples) < self.max_examples:
            example = message[:EXAMPLE_CHARS]
            if example not in stats.examples:
                stats.examples.append(example)
        if correlation_id and len(stats.cids) < self.max_cids and correlation_id not in stats.cids:
            stats.cids.append(correlation_id)

    def build(
        self,
        *,
        source: str,
        skipped: int = 0,
        top: int = 5,
        min_count: int = 10,
        spike_factor: float = 3.0,
    ) -> Insights:
        """The report: ``top`` templates per group, new ones, spikes and error templates.

        A template is *new* when it has lines in the window and none in the baseline (only
        when the baseline has records at all); a *spike* when it has at least ``min_count``
        lines in the window and its rate is ``spike_factor`` times the baseline's or more.
        """
        baseline_records = sum(t[1] for t in self._groups.values())
        has_baseline = self.baseline is not None and baseline_records > 0
        ratio_scale = self.baseline.seconds / self.window.seconds if self.baseline else 1.0
        merged: dict[tuple[str, str], _Stats] = {}  # two clusters may end with one template
        for cluster in self.drain.clusters:
            stats = self._stats.get(cluster.id)
            if stats is None:
                continue
            key = (cluster.group, cluster.template)
            into = merged.get(key)
            if into is None:
                merged[key] = stats
            else:
                merged[key] = _merge(into, stats, self.max_examples, self.max_cids)
        per_group: dict[str, list[TemplateInsight]] = {}
        for (group, template), stats in merged.items():
            if stats.count == 0:
                continue  # only in the baseline: not reported
            service, level = group.split(_SEP, 1)
            ratio = stats.count / stats.baseline * ratio_scale if stats.baseline else None
            per_group.setdefault(group, []).append(
                TemplateInsight(
                    id=template_id(service, level, template),
                    service=service,
                    level=level,
                    template=template,
                    count=stats.count,
                    baseline_count=stats.baseline,
                    rate_ratio=ratio,
                    new=has_baseline and stats.baseline == 0,
                    spike=ratio is not None and stats.count >= min_count and ratio >= spike_factor,
                    buckets=list(stats.buckets),
                    examples=list(stats.examples),
                    correlation_ids=list(stats.cids),
                    first_seen=stats.first,
                    last_seen=stats.last,
                )
            )
        groups: list[GroupSummary] = []
        reported: dict[str, TemplateInsight] = {}
        new: list[TemplateInsight] = []
        spikes: list[TemplateInsight] = []
        errors: list[TemplateInsight] = []
        for group, (count, base) in self._groups.items():
            service, level = group.split(_SEP, 1)
            templates = sorted(per_group.get(group, []), key=lambda t: (-t.count, t.template))
            groups.append(GroupSummary(service, level, count, base, len(templates), templates[:top]))
            for rank, insight in enumerate(templates):
                if rank < top or insight.new or insight.spike or insight.error:
                    reported[insight.id] = insight
                new += [insight] if insight.new else []
                spikes += [insight] if insight.spike else []
                errors += [insight] if insight.error else []
        groups.sort(key=lambda g: (g.service, _LEVEL_ORDER.get(g.level, 9), g.level))
        order = {(g.service, g.level): i for i, g in enumerate(groups)}
        templates = sorted(
            reported.values(), key=lambda t: (order[(t.service, t.level)], -t.count, t.template)
        )
        return Insights(
            source=source,
            window=self.window,
            baseline=self.baseline,
            bucket_count=self.bucket_count,
            window_records=sum(t[0] for t in self._groups.values()),
            baseline_records=baseline_records,
            skipped=skipped,
            templates_evicted=self.drain.evicted,
            groups=[g for g in groups if g.count],
            templates=templates,
            new=[t.id for t in sorted(new, key=lambda t: (-t.count, t.id))],
            spikes=[t.id for t in sorted(spikes, key=lambda t: (-(t.rate_ratio or 0.0), -t.count, t.id))],
            errors=[t.id for t in sorted(errors, key=lambda t: (-t.count, t.id))],
            settings={**self.settings, "min_count": min_count, "spike_factor": spike_factor, "top": top},
        )


def _merge(a: _Stats, b: _Stats, max_examples: int, max_cids: int) -> _Stats:
    out = _Stats(len(a.buckets))
    out.count, out.baseline = a.count + b.count, a.baseline + b.baseline
    out.buckets = [x + y for x, y in zip(a.buckets, b.buckets, strict=True)]
    out.examples = list(dict.fromkeys(a.examples + b.examples))[:max_examples]
    out.cids = list(dict.fromkeys(a.cids + b.cids))[:max_cids]
    out.first, out.last = min(a.first, b.first), max(a.last, b.last)
    return out


def template_id(service: str, level: str, template: str) -> str:
    """A short id, the same for the same template of the same service and level in every run."""
    digest = hashlib.blake2b(f"{service}\n{level}\n{template}".encode(), digest_size=5).hexdigest()
    return f"t{digest}"
