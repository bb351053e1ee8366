"""Log insights: what the logs are doing, mined into templates with Drain.

``lumen-otel insights`` (:mod:`lumen_otel.cli.insights`) is the command line; this package has
no Typer or Rich dependency:

* :mod:`~lumen_otel.insights.drain`: the Drain template miner and its masking pre-step;
* :mod:`~lumen_otel.insights.sources`: log directory, Loki and OpenSearch readers;
* :mod:`~lumen_otel.insights.analysis`: window and baseline counts, new templates, spikes, errors;
* :mod:`~lumen_otel.insights.llm`: the optional summary from an OpenAI-compatible endpoint.
"""

from __future__ import annotations

from lumen_otel.insights.analysis import Insights, InsightsBuilder, TemplateInsight, TimeRange
from lumen_otel.insights.drain import Cluster, Drain, mask, tokenize

__all__ = [
    "Cluster",
    "Drain",
    "Insights",
    "InsightsBuilder",
    "TemplateInsight",
    "TimeRange",
    "mask",
    "tokenize",
]
