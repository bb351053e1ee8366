"""Process-wide state: what set-up installed, held in one object.

A process has one telemetry set-up, one logging pipeline and one default redactor; keeping
them here (and not as globals spread over their modules) gives one place to read them and
one to undo them: :func:`lumen_otel.testing.reset`. Importing this module loads nothing else.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lumen_otel._logging.pipeline import Pipeline
    from lumen_otel._redaction import Redactor
    from lumen_otel._setup.bootstrap import TelemetryHandle

__all__ = ["STATE", "State"]


@dataclass
class State:
    """The set-up of this process; ``lock`` guards ``handle`` while set-up runs."""

    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)
    handle: TelemetryHandle | None = None
    pipeline: Pipeline | None = None
    redactor: Redactor | None = None
    #: the set-up was made by ``opentelemetry-instrument`` (from the environment alone)
    set_up_by_launcher: bool = False
    #: when each rate-limited internal warning was last reported (monotonic seconds)
    reported: dict[str, float] = field(default_factory=dict)
    logging_config_patched: bool = False


STATE = State()
