"""``lumen-otel doctor``: effective settings, collector reachability and TLS, instrumentations, traps.

Run it in the environment the service runs in (same variables, same virtualenv); give it
the service's command after ``--`` to check that command for known traps too::

    lumen-otel doctor -- gunicorn --preload -w 4 app.wsgi

It also checks that the log directory can be written, which Django settings module a
``manage.py`` (or the command) will use, gunicorn ``UvicornWorker`` set-ups (``-k``,
``GUNICORN_CMD_ARGS``, ``gunicorn.conf.py``), and lists each instrumentation as loading only
when its module imports and the library it instruments is installed.

Exit status: 0 fine (warnings allowed), 1 something is wrong (an endpoint unreachable, TLS
invalid, lumen-otel's distro not installed, the log directory not writable), 2 a setting is
invalid.
"""

from __future__ import annotations

import ast
import datetime as dt
import importlib.util
import json
import os
import shlex
import socket
import ssl
import tempfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import typer

__all__ = ["Check", "DoctorReport", "check_endpoint", "diagnose", "register"]

Status = Literal["ok", "info", "warn", "fail"]
_SIGNALS = ("TRACES", "METRICS", "LOGS")


@dataclass
class Check:
    """One finding: a topic, how it stands and what to do about it."""

    topic: str
    status: Status
    detail: str


@dataclass
class DoctorReport:
    settings: list[tuple[str, str, str]] = field(default_factory=list)
    config_error: str | None = None
    checks: list[Check] = field(default_factory=list)
    instrumentations: list[dict[str, str]] = field(default_factory=list)
    #: per signal: whether it is exported, where (userinfo hidden), encrypted or not, header names
    signals: list[dict[str, Any]] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        if self.config_error is not None:
            return 2
        return 1 if any(c.status == "fail" for c in self.checks) else 0

    def to_json(self) -> dict[str, Any]:
        return {
            "exit_code": self.exit_code,
            "config_error": self.config_error,
            "settings": [{"setting": s, "value": v, "source": src} for s, v, src in self.settings],
            "signals": self.signals,
            "checks": [asdict(c) for c in self.checks],
            "instrumentations": self.instrumentations,
        }


# ---------------------------------------------------------------- the collector endpoint


def check_endpoint(
    url: str, env: Mapping[str, str], topic: str, timeout: float = 3.0, tls: bool | None = None
) -> Check:
    """TCP connect to the endpoint; for ``https`` a TLS handshake with the configured CA
    (``tls=False``: gRPC with ``OTEL_EXPORTER_OTLP_*INSECURE=true``, no handshake).

    The details name the URL without its userinfo or query (``https://***@host``)."""
    from lumen_otel._config.settings import shown_url

    parts = urlsplit(url)
    url = shown_url(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except OSError as exc:
        return Check(topic, "fail", f"{url} is unreachable: {exc.strerror or exc}")
    with sock:
        if parts.scheme != "https":
            return Check(topic, "ok", f"{url} is reachable (TCP; plain http, no TLS)")
        if tls is False:
            return Check(topic, "ok", f"{url} is reachable (TCP; gRPC plaintext, no TLS)")
        return _check_tls(sock, host, url, env, topic)


def _check_tls(sock: socket.socket, host: str, url: str, env: Mapping[str, str], topic: str) -> Check:
    ca = env.get("OTEL_EXPORTER_OTLP_CERTIFICATE")
    cert = env.get("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE")
    key = env.get("OTEL_EXPORTER_OTLP_CLIENT_KEY")
    try:
        context = ssl.create_default_context(cafile=ca) if ca else ssl.create_default_context()
        if cert:
            context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        return Check(topic, "fail", f"cannot load the TLS files (OTEL_EXPORTER_OTLP_*CERTIFICATE/KEY): {exc}")
    trust = f"CA {ca}" if ca else "the system CA store"
    try:
        with context.wrap_socket(sock, server_hostname=host) as tls:
            peer = tls.getpeercert() or {}
            version = tls.version()
    except ssl.SSLCertVerificationError as exc:
        return Check(topic, "fail", f"{url}: TLS certificate not valid against {trust}: {exc.verify_message}")
    except (ssl.SSLError, OSError) as exc:
        return Check(topic, "fail", f"{url}: TLS handshake failed: {exc}")
    expires = peer.get("notAfter")
    detail = f"{url} is reachable; TLS valid ({version}, trusted by {trust}"
    if isinstance(expires, str):
        when = dt.datetime.fromtimestamp(ssl.cert_time_to_seconds(expires), dt.timezone.utc)
        days = (when - dt.datetime.now(dt.timezone.utc)).days
        detail += f", certificate expires {when:%Y-%m-%d}"
        if days < 14:
            return Check(topic, "warn", detail + f": in {days} days)")
    return Check(topic, "ok", detail + ")")


# ---------------------------------------------------------------- instrumentations and distros


def _instrumentations(env: Mapping[str, str]) -> list[dict[str, str]]:
    from importlib.metadata import entry_points

    from opentelemetry.instrumentation.dependencies import get_dist_dependency_conflicts

    disabled = {
        x.strip() for x in env.get("OTEL_PYTHON_DISABLED_INSTRUMENTATIONS", "").split(",") if x.strip()
    }
    rows = []
    for ep in sorted(entry_points(group="opentelemetry_instrumentor"), key=lambda e: e.name):
        dist = ep.dist
        package = f"{dist.metadata['Name']} {dist.version}" if dist is not None else "?"
        if "*" in disabled or ep.name in disabled:
            status, detail = "disabled", "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS"
        else:
            conflict = get_dist_dependency_conflicts(dist) if dist is not None else None
            if conflict is None:
                status, detail = _loads(ep)
            else:
                status, detail = "skipped", str(conflict)
        rows.append({"name": ep.name, "package": package, "status": status, "detail": detail})
    return rows


def _loads(ep: Any) -> tuple[str, str]:
    """("loads", "") when the entry point imports and the library it instruments is installed;
    else ("skipped", why). A distribution can ship several instrumentors (``httpx`` and
    ``httpx2``) whose libraries its metadata does not all require: each one's own dependencies
    are what the launcher finds missing when it enables it."""
    from opentelemetry.instrumentation.dependencies import get_dependency_conflicts

    try:
        instrumentor = ep.load()
        dependencies = instrumentor().instrumentation_dependencies()
    except Exception as exc:  # noqa: BLE001 - whatever stops it loading is the finding
        return "skipped", f"cannot be loaded: {type(exc).__name__}: {exc}"
    conflict = get_dependency_conflicts(list(dependencies))
    return ("loads", "") if conflict is None else ("skipped", str(conflict))


def _distro_checks(env: Mapping[str, str]) -> list[Check]:
    from importlib.metadata import entry_points

    checks = []
    for group, variable in (
        ("opentelemetry_distro", "OTEL_PYTHON_DISTRO"),
        ("opentelemetry_configurator", "OTEL_PYTHON_CONFIGURATOR"),
    ):
        names = [ep.name for ep in entry_points(group=group)]
        chosen = env.get(variable)
        kind = group.removeprefix("opentelemetry_")
        if "lumen" not in names:
            checks.append(
                Check(
                    kind,
                    "fail",
                    f"lumen-otel's {kind} entry point is not installed: "
                    "reinstall lumen-otel in this environment",
                )
            )
        elif chosen and chosen != "lumen":
            checks.append(
                Check(
                    kind,
                    "warn",
                    f"{variable}={chosen}: opentelemetry-instrument will use that {kind}, not lumen-otel's",
                )
            )
        elif len(names) > 1 and not chosen:
            others = ", ".join(n for n in names if n != "lumen")
            checks.append(
                Check(
                    kind,
                    "warn",
                    f"another {kind} is installed ({others}); opentelemetry-instrument "
                    f"takes the first one it finds. Set {variable}=lumen",
                )
            )
        else:
            checks.append(
                Check(kind, "ok", f"lumen ({variable}={chosen})" if chosen else "lumen (the only one)")
            )
    return checks


# ---------------------------------------------------------------- traps


def _flag(args: list[str], *names: str) -> bool:
    return any(a in names or any(a.startswith(n + "=") for n in names) for a in args)


def _trap_checks(command: list[str], env: Mapping[str, str], protocol: str) -> list[Check]:
    checks = []
    program = os.path.basename(command[0]) if command else ""
    args = command[1:]
    if program == "opentelemetry-instrument" and args:
        program, args = os.path.basename(args[0]), args[1:]
    if program in ("python", "python3") and args[:2] in (["-m", "uvicorn"], ["-m", "gunicorn"]):
        program, args = args[1], args[2:]
    reload_env = env.get("UVICORN_RELOAD", "").lower() in ("1", "true", "yes")
    if (program == "uvicorn" and _flag(args, "--reload")) or reload_env:
        checks.append(
            Check(
                "uvicorn --reload",
                "warn",
                "the app runs in a reloader child process that opentelemetry-instrument does not "
                "set up reliably (upstream lists --reload as unsupported): use it in development "
                "only, or call lumen_otel.bootstrap() at the top of the app module",
            )
        )
    gunicorn_args = args if program == "gunicorn" else []
    gunicorn_args += shlex.split(env.get("GUNICORN_CMD_ARGS", ""))
    if _flag(gunicorn_args, "--preload"):
        if protocol == "grpc":
            checks.append(
                Check(
                    "gunicorn --preload",
                    "warn",
                    "OTLP over gRPC: a gRPC channel made in the master before fork does not work in "
                    "the workers. Use OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf (the default), or "
                    "drop --preload",
                )
            )
        else:
            checks.append(
                Check(
                    "gunicorn --preload",
                    "ok",
                    "no post_fork hook needed: lumen-otel restarts its log writer and OTLP export "
                    "threads and gives each worker its own service.instance.id after fork "
                    "(os.register_at_fork), and the SDK's span/metric/log processors re-start "
                    "theirs. Only code of your own that opens connections at import needs one",
                )
            )
    worker = _worker_class(gunicorn_args, Path.cwd())
    if worker is not None and worker[0].endswith("UvicornWorker"):
        checks.append(_uvicorn_worker_check(*worker))
    if importlib.util.find_spec("django") is not None:
        django = _django_check(command, env, Path.cwd())
        if django is not None:
            checks.append(django)
    return checks


def _option(args: list[str], *names: str) -> str | None:
    """The last value given to one of ``names`` (``-k X``, ``--worker-class=X``, ``-kX``)."""
    found = None
    for index, arg in enumerate(args):
        for name in names:
            if arg == name and index + 1 < len(args):
                found = args[index + 1]
            elif arg.startswith(name + "=") and name.startswith("--"):
                found = arg.partition("=")[2]
            elif not name.startswith("--") and arg.startswith(name) and len(arg) > len(name):
                found = arg[len(name) :]
    return found


def _config_worker_class(path: Path) -> str | None:
    """``worker_class = "..."`` in a gunicorn config file (read with :mod:`ast`, never run)."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, SyntaxError, ValueError):
        return None
    found = None
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Constant)
            and any(isinstance(t, ast.Name) and t.id == "worker_class" for t in node.targets)
        ):
            found = str(node.value.value)
    return found


def _worker_class(gunicorn_args: list[str], cwd: Path) -> tuple[str, str] | None:
    """(gunicorn worker class, where it is set): the command line and ``GUNICORN_CMD_ARGS`` win
    over the config file (``-c``/``--config``, else ``./gunicorn.conf.py``), as in gunicorn."""
    chosen = _option(gunicorn_args, "-k", "--worker-class")
    if chosen is not None:
        return chosen, "the command line / GUNICORN_CMD_ARGS"
    config = _option(gunicorn_args, "-c", "--config")
    path = cwd / (config.removeprefix("python:") if config else "gunicorn.conf.py")
    from_file = _config_worker_class(path) if path.is_file() else None
    return (from_file, str(path)) if from_file is not None else None


def _uvicorn_worker_check(worker: str, where: str) -> Check:
    """gunicorn's UvicornWorker gives uvicorn's loggers gunicorn's handlers and ``propagate=False``."""
    from lumen_otel import _server_patches

    topic = "gunicorn UvicornWorker"
    if callable(getattr(_server_patches, "_patch_uvicorn_worker_init", None)):
        return Check(topic, "ok", f"{worker} ({where}): UvicornWorker loggers routed through lumen-otel")
    return Check(
        topic,
        "warn",
        f"{worker} ({where}): this lumen-otel does not re-route the loggers UvicornWorker takes over "
        "(uvicorn.error, uvicorn.access): their lines bypass redaction and OTLP. Upgrade lumen-otel",
    )


def _django_check(command: list[str], env: Mapping[str, str], cwd: Path) -> Check | None:
    """Which settings module a Django service will use; a failure when it cannot be found.

    Without ``DJANGO_SETTINGS_MODULE``: the ``os.environ.setdefault`` of the entry point the
    command names, else of ``./manage.py``, read as lumen-otel's launcher door reads it."""
    try:
        from lumen_otel._setup import django_settings
    except ImportError:  # an older lumen-otel layout: only the variable can be reported
        django_settings = None  # type: ignore[assignment]
    variable = env.get("DJANGO_SETTINGS_MODULE")
    if variable:
        return _settings_module_check(django_settings, variable, "DJANGO_SETTINGS_MODULE", cwd)
    manage = cwd / "manage.py"
    if django_settings is not None:
        candidates: list[tuple[list[str], list[str]]] = []
        if command:
            orig = command[1:] if os.path.basename(command[0]) == "opentelemetry-instrument" else command
            python = bool(orig) and os.path.basename(orig[0]).startswith("python")
            candidates.append((orig[1:], orig) if python else (orig, orig))
        if manage.is_file():
            candidates.append(([str(manage)], [str(manage)]))
        for argv, orig_argv in candidates:
            found = django_settings.discover(argv, orig_argv, cwd)
            if found.module is not None:
                where = ", ".join(found.looked_in) or "the command line"
                return _settings_module_check(
                    django_settings, found.module, f"os.environ.setdefault in {where}", cwd
                )
            if found.entry_point:
                return Check("Django", "fail", str(django_settings.SettingsNotFound(found.looked_in)))
    return None  # nothing says this is a Django service (``doctor -- <command>`` tells for a command)


def _settings_module_check(django_settings: Any, module: str, source: str, cwd: Path) -> Check:
    """The settings module and where it came from; a failure when no file would be imported for it."""
    if django_settings is not None and django_settings.settings_file(module, cwd) is None:
        return Check(
            "Django",
            "fail",
            f"settings module {module} ({source}) is not found under {cwd} or sys.path: "
            "Django would stop with 'No module named ...' at start-up. Check its spelling",
        )
    return Check("Django", "ok", f"settings module {module} ({source})")


def _log_dir_check(settings: Any) -> Check | None:
    """Can the service create ``<service>.log`` in the log directory (creating the directory first)?

    Tried for real, with a probe file or directory removed straight away: permission bits do not
    tell (root ignores them; a read-only mount or a file where a directory should be stops root too).
    """
    directory = settings.log_dir
    if directory is None:
        return None
    source = settings.sources.get("log_dir", "default")
    variable = source if source not in ("argument", "default") else "LUMEN_LOG_DIR"
    shown = f"{variable}={directory}"
    existing = Path(directory)
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    reason = None
    if not existing.is_dir():
        reason = f"{existing} is not a directory"
    else:
        try:
            if existing == directory:
                fd, probe = tempfile.mkstemp(dir=existing, prefix=".lumen-doctor-")
                os.close(fd)
                os.unlink(probe)
            else:
                os.rmdir(tempfile.mkdtemp(dir=existing, prefix=".lumen-doctor-"))
        except OSError as exc:
            reason = f"{exc.strerror or exc}: {existing}"
    if reason is not None:
        return Check(
            "log directory",
            "fail",
            f"{shown}: cannot write {settings.service_name}.log there ({reason}). Point {variable} at a "
            "writable directory, or create it writable by the service's user (mkdir -p, then chown/chmod)",
        )
    made = "" if existing == directory else f" (it will be created in {existing})"
    return Check("log directory", "ok", f"{shown} is writable{made}")


# ---------------------------------------------------------------- the whole diagnosis


def diagnose(
    env: Mapping[str, str] | None = None, command: list[str] | None = None, timeout: float = 3.0
) -> DoctorReport:
    from lumen_otel._config.settings import load_settings
    from lumen_otel.exceptions import ConfigError

    environ = os.environ if env is None else env
    report = DoctorReport()
    try:
        settings = load_settings(environ)
    except ConfigError as exc:
        report.config_error = str(exc)
        return report
    report.settings = settings.describe()
    report.signals = _signals(settings)
    for warning in settings.warnings:
        report.checks.append(Check("settings", "warn", warning))
    if settings.sdk_disabled:
        report.checks.append(
            Check(
                "sdk",
                "info",
                "OTEL_SDK_DISABLED=true: no OpenTelemetry SDK provider is installed and nothing is "
                "exported (no traces, metrics or OTLP logs, whatever endpoint is set); lumen's console "
                "and file logging still run as configured",
            )
        )
    endpoints = []
    set_endpoints = 0
    # an endpoint is checked when a signal is exported to it: OTEL_<SIGNAL>_EXPORTER=none/console
    # and OTEL_SDK_DISABLED win over an endpoint
    used = {t.url if t.source.endswith(f"_{t.signal.upper()}_ENDPOINT") else "main" for t in settings.targets}
    if settings.otlp_endpoint is not None:
        set_endpoints += 1
        if "main" in used:
            endpoints.append(("collector", settings.otlp_endpoint))
        else:
            report.checks.append(_unused_endpoint("collector", settings.otlp_endpoint, settings))
    for signal in _SIGNALS:
        own = getattr(settings, f"otlp_{signal.lower()}_endpoint")
        if own is not None:
            set_endpoints += 1
            if own in used:
                endpoints.append((f"collector ({signal.lower()})", own))
            else:
                report.checks.append(_unused_endpoint(f"collector ({signal.lower()})", own, settings))
    if not set_endpoints:
        report.checks.append(
            Check("collector", "info", "no OTLP endpoint set: logs go to the console/files only")
        )
    for topic, url in endpoints:
        report.checks.append(check_endpoint(url, environ, topic, timeout, _uses_tls(settings, url)))
    log_dir = _log_dir_check(settings)
    if log_dir is not None:
        report.checks.append(log_dir)
    from lumen_otel import _native  # loaded when lumen_otel was imported, as the service loads it

    report.checks.append(Check("native accelerator", "info", _native.status))
    report.checks.extend(_distro_checks(environ))
    report.instrumentations = _instrumentations(environ)
    report.checks.extend(_trap_checks(command or [], environ, settings.otlp_protocol))
    return report


def _unused_endpoint(topic: str, url: str, settings: Any) -> Check:
    """An endpoint no signal is exported to, and why (it is not contacted)."""
    from lumen_otel._config.settings import SIGNALS, shown_url

    if settings.sdk_disabled:
        why = "OTEL_SDK_DISABLED=true"
    else:
        why = ", ".join(
            f"{settings.sources.get(f'{s}_exporter', 'default')}={getattr(settings, f'{s}_exporter')}"
            for s in SIGNALS
            if getattr(settings, f"{s}_exporter") != "otlp"
        )
    return Check(topic, "info", f"{shown_url(url)} is set but not used (not checked): {why}")


def _signals(settings: Any) -> list[dict[str, Any]]:
    """Each signal's effective endpoint (userinfo hidden), transport and header names; a signal
    exported to the console, or not at all by ``OTEL_<SIGNAL>_EXPORTER=none``/``OTEL_SDK_DISABLED``,
    names that variable as its source."""
    from lumen_otel._config.settings import SIGNALS

    switched_on = {"logs": True, "traces": settings.traces, "metrics": settings.metrics}
    rows: list[dict[str, Any]] = []
    for signal in SIGNALS:
        target = settings.export_target(signal)
        if target is None:
            kind = getattr(settings, f"{signal}_exporter")
            source = None
            if settings.sdk_disabled:
                source = settings.sources.get("sdk_disabled", "OTEL_SDK_DISABLED")
            elif kind != "otlp":
                source = settings.sources.get(f"{signal}_exporter", f"OTEL_{signal.upper()}_EXPORTER")
            console = kind == "console" and not settings.sdk_disabled
            rows.append(
                {
                    "signal": signal,
                    "exported": console and bool(switched_on[signal]),
                    "endpoint": None,
                    "source": source,
                    "encrypted": None,
                    "transport": "console (stdout)" if console else None,
                    "headers": [],
                    "headers_source": None,
                }
            )
            continue
        rows.append(
            {
                "signal": signal,
                "exported": bool(switched_on[signal]),
                "endpoint": target.shown_url,
                "source": target.source,
                "encrypted": target.encrypted,
                "transport": target.transport
                + (f" ({target.insecure_source}=true)" if target.insecure_source else ""),
                "headers": list(target.header_names),  # names only: values are never shown
                "headers_source": target.header_source,
            }
        )
    return rows


def _uses_tls(settings: Any, url: str) -> bool | None:
    """False when every gRPC signal sent to ``url`` has TLS turned off; else the scheme decides."""
    if settings.otlp_protocol != "grpc":
        return None
    users = [t for t in settings.targets if t.url == url]
    return False if users and not any(t.encrypted for t in users) else None


def _signal_cells(row: Mapping[str, Any]) -> tuple[str, str, str, str, str]:
    if row["endpoint"] is None:
        source = row["source"]
        if source is None:
            return row["signal"], "-", "not exported (no endpoint)", "-", "-"
        if row["transport"] is not None:  # OTEL_<SIGNAL>_EXPORTER=console
            state = row["transport"] if row["exported"] else "off (LUMEN_TRACES/LUMEN_METRICS)"
            return row["signal"], "-", state, source, "-"
        value = "true" if source == "OTEL_SDK_DISABLED" else "none"
        return row["signal"], "-", f"not exported ({source}={value})", source, "-"
    if not row["exported"]:
        state = "off (LUMEN_TRACES/LUMEN_METRICS)"
    else:
        state = ("✓ encrypted, " if row["encrypted"] else "✗ NOT encrypted, ") + row["transport"]
    headers = ", ".join(row["headers"]) + " (values hidden)" if row["headers"] else "-"
    return row["signal"], row["endpoint"], state, row["source"], headers


_MARKS = {"ok": ("✓", "green"), "info": ("·", "dim"), "warn": ("!", "yellow"), "fail": ("✗", "red bold")}


def render(report: DoctorReport, console: Any) -> None:
    from rich.table import Table

    if report.config_error is not None:
        console.print(f"[red bold]✗ configuration error:[/] {report.config_error}")
        return
    table = Table(title="Effective settings", title_justify="left", show_edge=False)
    for column in ("setting", "value", "source"):
        table.add_column(column, no_wrap=column != "value")
    for setting, value, source in report.settings:
        table.add_row(setting, value, source if source != "default" else f"[dim]{source}[/]")
    console.print(table)
    console.print()
    export = Table(title="OTLP export", title_justify="left", show_edge=False)
    for column in ("signal", "endpoint", "transport", "source", "headers"):
        export.add_column(column, no_wrap=column in ("signal", "source"))
    for row in report.signals:
        export.add_row(*_signal_cells(row))
    console.print(export)
    console.print()
    console.print("[bold]Checks[/]")
    for check in report.checks:
        mark, style = _MARKS[check.status]
        console.print(f"  [{style}]{mark}[/] [bold]{check.topic}[/]: {check.detail}")
    console.print()
    console.print("[bold]Instrumentations[/] (entry points opentelemetry_instrumentor)")
    for row in report.instrumentations:
        style = {"loads": "green", "skipped": "dim", "disabled": "yellow"}[row["status"]]
        detail = f" [dim]({row['detail']})[/]" if row["detail"] else ""
        console.print(f"  [{style}]{row['status']:<8}[/] {row['name']:<12} [dim]{row['package']}[/]{detail}")
    console.print()
    failures = sum(1 for c in report.checks if c.status == "fail")
    warnings = sum(1 for c in report.checks if c.status == "warn")
    if failures:
        console.print(f"[red bold]{failures} problem(s)[/], {warnings} warning(s)")
    else:
        console.print(f"[green bold]healthy[/], {warnings} warning(s)")


def register(app: typer.Typer) -> None:
    @app.command("doctor", context_settings={"allow_interspersed_args": False})
    def doctor_command(
        command: Annotated[
            list[str] | None,
            typer.Argument(
                metavar="COMMAND", help="After --: the service's start command, checked for known traps."
            ),
        ] = None,
        as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
        timeout: Annotated[
            float, typer.Option("--timeout", min=0.1, help="Seconds to wait for the collector.")
        ] = 3.0,
    ) -> None:
        """Check settings (and where each came from), the collector, instrumentations and known traps."""
        from lumen_otel.cli.trace import make_console

        report = diagnose(command=command or [], timeout=timeout)
        if as_json:
            print(json.dumps(report.to_json(), indent=2))
        else:
            render(report, make_console(stderr=report.config_error is not None))
        raise typer.Exit(report.exit_code)
