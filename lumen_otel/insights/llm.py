"""An optional natural-language summary from an OpenAI-compatible chat completions endpoint.

Configured by ``LUMEN_INSIGHTS_LLM_URL`` (the API base, e.g. ``https://api.example/v1``, or the
full ``.../chat/completions`` URL), ``LUMEN_INSIGHTS_LLM_MODEL`` and ``LUMEN_INSIGHTS_LLM_API_KEY``.

What is sent is :func:`payload`: the reported templates, each run through lumen's redactor
once more (and with control characters escaped), with their service, level and counts; never
a log line, an example message or a correlation ID. The request is bounded (a deadline for
the whole exchange, a cap on the answer's size, no redirects followed), plain ``http://`` is
refused except to a loopback address, and the API key appears in no error message.
"""

from __future__ import annotations

import ipaddress
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from lumen_otel.insights.analysis import Insights
from lumen_otel.insights.text import escape_text

__all__ = ["LLMConfig", "LLMError", "payload", "summarise"]

MAX_TEMPLATES = 60
MAX_RESPONSE_BYTES = 256 * 1024
MAX_SUMMARY_CHARS = 4000

SYSTEM_PROMPT = (
    "You summarise application log statistics for an on-call engineer. You get log templates "
    "(variable parts replaced by placeholders such as <NUM> or <*>) with their service, level, "
    "count in the window and count in the baseline before it, and flags for new templates and "
    "spikes. In at most 8 short bullet points say what changed and what looks wrong, most "
    "important first. Use only the data given; do not guess at causes you cannot see."
)


class LLMError(Exception):
    """The summary could not be had; the message is safe to print (it never holds the key)."""


@dataclass(frozen=True)
class LLMConfig:
    url: str
    model: str
    api_key: str | None = field(default=None, repr=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> LLMConfig | None:
        """The configuration from ``LUMEN_INSIGHTS_LLM_*``; None when no URL is set.

        Raises:
            LLMError: a URL without a model.
        """
        url = (env.get("LUMEN_INSIGHTS_LLM_URL") or "").strip()
        if not url:
            return None
        model = (env.get("LUMEN_INSIGHTS_LLM_MODEL") or "").strip()
        if not model:
            raise LLMError("LUMEN_INSIGHTS_LLM_URL is set but LUMEN_INSIGHTS_LLM_MODEL is not")
        return cls(url, model, (env.get("LUMEN_INSIGHTS_LLM_API_KEY") or "").strip() or None)

    @property
    def endpoint(self) -> str:
        """The chat completions URL; a query string or fragment stays at the end."""
        parts = urlsplit(self.url)
        path = parts.path.rstrip("/")
        if not path.endswith("/chat/completions"):
            path = f"{path}/chat/completions"
        return parts._replace(path=path).geturl()


#: stand-ins that give the redactor's value rules a shape to match where the template has a
#: parameter: "born <NUM>/<NUM>/<NUM> at <NUM> Elm St" must still read as a date and an address
_PARAMETER_STAND_INS = (("<NUM>", "11"),)


def _redacted_template(template: str, redact: Callable[[str], str]) -> str:
    """``template`` redacted with its parameters filled in, so a value the masking step turned
    into ``<NUM>`` cannot hide the identifier around it (a street address, a date of birth)."""
    filled = template
    for parameter, stand_in in _PARAMETER_STAND_INS:
        filled = filled.replace(parameter, stand_in)
    redacted = redact(filled)
    if redacted == filled:
        return redact(template)
    for parameter, stand_in in _PARAMETER_STAND_INS:  # what stayed a parameter reads as one again
        redacted = redacted.replace(stand_in, parameter)
    return redacted


def payload(insights: Insights, model: str) -> dict[str, Any]:
    """The chat completions request body: templates (redacted again) and counts only."""
    from lumen_otel import redact

    chosen: dict[str, None] = {}
    for ids in (insights.errors, insights.new, insights.spikes, [t.id for t in insights.templates]):
        for template_id in ids:
            if len(chosen) < MAX_TEMPLATES:
                chosen.setdefault(template_id, None)
    by_id = insights.by_id()
    templates = [
        {
            "service": escape_text(redact(t.service)),
            "level": escape_text(t.level),
            "template": escape_text(_redacted_template(t.template, redact)),
            "count": t.count,
            "baseline_count": t.baseline_count,
            "new": t.new,
            "spike": t.spike,
        }
        for t in (by_id[i] for i in chosen)
    ]
    facts = {
        "window": {"since": insights.window.to_json()["since"], "until": insights.window.to_json()["until"]},
        "baseline": None
        if insights.baseline is None
        else {"since": insights.baseline.to_json()["since"], "until": insights.baseline.to_json()["until"]},
        "records": {"window": insights.window_records, "baseline": insights.baseline_records},
        "templates": templates,
    }
    return {
        "model": model,
        "messages": [
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": json.dumps(facts, ensure_ascii=False)},
        ],
        "temperature": 0.2,
        "max_tokens": 600,
        "stream": False,
    }


def _loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def summarise(insights: Insights, config: LLMConfig, *, timeout: float = 30.0) -> str:
    """The model's summary of ``insights`` (at most :data:`MAX_SUMMARY_CHARS` characters).

    Raises:
        LLMError: not reachable, refused, too slow, too large or not a chat completion.
    """
    try:
        return _summarise(insights, config, timeout)
    except LLMError as exc:
        raise LLMError(_scrub(str(exc), config.api_key)) from None


def _summarise(insights: Insights, config: LLMConfig, timeout: float) -> str:
    import httpx

    parts = urlsplit(config.endpoint)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise LLMError("LUMEN_INSIGHTS_LLM_URL must be an http(s) URL")
    if parts.scheme == "http" and not _loopback(parts.hostname):
        raise LLMError("LUMEN_INSIGHTS_LLM_URL must use https (plain http only to a loopback address)")
    if parts.username or parts.password:
        raise LLMError("LUMEN_INSIGHTS_LLM_URL must not hold credentials (use LUMEN_INSIGHTS_LLM_API_KEY)")
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if config.api_key:
        headers["Authorization"] = f"Bearer {config.api_key}"
    body = json.dumps(payload(insights, config.model)).encode()
    deadline = time.monotonic() + timeout
    where = f"{parts.scheme}://{parts.netloc}{parts.path}"
    try:
        with (
            httpx.Client(timeout=httpx.Timeout(timeout), follow_redirects=False) as client,
            client.stream("POST", config.endpoint, content=body, headers=headers) as response,
        ):
            chunks: list[bytes] = []
            size = 0
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > MAX_RESPONSE_BYTES:
                    raise LLMError(f"the answer from {where} is larger than {MAX_RESPONSE_BYTES} bytes")
                if time.monotonic() > deadline:
                    raise LLMError(f"{where} took longer than {timeout:g} s")
                chunks.append(chunk)
            status = response.status_code
    except httpx.TimeoutException:
        raise LLMError(f"{where} took longer than {timeout:g} s") from None
    except httpx.HTTPError as exc:
        raise LLMError(f"could not reach {where}: {type(exc).__name__}") from None
    if status != 200:
        raise LLMError(f"{where} answered HTTP {status}")
    try:
        answer = json.loads(b"".join(chunks))
        content = answer["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError):
        raise LLMError(f"the answer from {where} is not a chat completion") from None
    if not isinstance(content, str) or not content.strip():
        raise LLMError(f"the answer from {where} has no text")
    return content.strip()[:MAX_SUMMARY_CHARS]


def _scrub(text: str, secret: str | None) -> str:
    return text.replace(secret, "***") if secret else text
