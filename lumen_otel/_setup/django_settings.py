"""Django's settings at start-up: which module the program uses, and when Django may be instrumented.

The Django instrumentation reads ``settings.MIDDLEWARE`` when it is enabled. Under
``opentelemetry-instrument`` that happens before the program runs: before ``manage.py``,
``wsgi.py`` or ``asgi.py`` set ``DJANGO_SETTINGS_MODULE`` with ``os.environ.setdefault``, and
before the project's directory is on ``sys.path``. Finding no settings there, the instrumentation
configures *empty* settings for good: ``check`` finds no issues, ``migrate`` fails, every request
answers 500. Called from ``settings.py``, ``bootstrap()`` instruments while the settings are still
being imported, and Django then replaces the middleware list the instrumentation extended.

So:

- :func:`discover` reads the entry point's ``setdefault`` (parsed with :mod:`ast`, never run): the
  script being run, or the WSGI/ASGI module named on a gunicorn, uvicorn or daphne command line;
  a Django entry point that names no settings module stops start-up with :class:`SettingsNotFound`.
- :func:`instrument_when_configured` runs the instrumentation once the settings are final: when
  ``django.setup()`` (which ``manage.py``, ``get_wsgi_application()`` and ``get_asgi_application()``
  call before Django reads ``MIDDLEWARE``) populates the app registry.
"""

from __future__ import annotations

import ast
import os
import re
import sys
from collections.abc import Callable, MutableMapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lumen_otel._guard import internal_logger
from lumen_otel.exceptions import ConfigError

__all__ = [
    "SETTINGS_VARIABLE",
    "Discovery",
    "SettingsNotFound",
    "apply_discovery",
    "discover",
    "instrument_when_configured",
    "settings_being_imported",
    "settings_from_source",
]

SETTINGS_VARIABLE = "DJANGO_SETTINGS_MODULE"

#: servers whose command line names the WSGI/ASGI module (``mysite.wsgi``, ``mysite.asgi:application``)
_SERVERS = frozenset({"gunicorn", "uvicorn", "daphne"})
#: Django's own command-line entry points: the settings come from the variable or ``--settings``
_DJANGO_COMMANDS = frozenset({"django-admin", "django-admin.py", "django"})
#: server options that change where the application module is looked up
_APP_DIR_OPTIONS = frozenset({"--chdir", "--app-dir"})
_PYTHONPATH_OPTIONS = frozenset({"--pythonpath"})
_ENV_OPTIONS = frozenset({"-e", "--env"})
#: modules whose import marks a Django entry point
_DJANGO_ENTRY_MODULES = ("django.core.management", "django.core.wsgi", "django.core.asgi")
_APP_TARGET = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*(?::.*)?")
_MODULE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")


class SettingsNotFound(ConfigError):
    """A Django entry point runs under the launcher, and no settings module can be found for it."""

    def __init__(self, looked_in: Sequence[str]) -> None:
        self.name = SETTINGS_VARIABLE
        self.value = None
        self.accepted = "a settings module"
        where = ", ".join(looked_in) if looked_in else "the command line"
        ValueError.__init__(
            self,
            f"{SETTINGS_VARIABLE} is not set and no os.environ.setdefault({SETTINGS_VARIABLE!r}, "
            f"'<module>') with a plain string was found (looked in {where}); export "
            f"{SETTINGS_VARIABLE}=<project>.settings before opentelemetry-instrument: the Django "
            "instrumentation would otherwise run the service on empty settings",
        )


@dataclass(frozen=True)
class Discovery:
    """What the command line says about Django settings.

    ``module``: the settings module found (None: none); ``entry_point``: the program is a Django
    entry point (``manage.py``, ``django-admin``, a Django WSGI/ASGI module under a server);
    ``looked_in``: the files read, for the error message.
    """

    module: str | None
    entry_point: bool
    looked_in: tuple[str, ...] = ()


# ---------------------------------------------------------------- reading a file


def _is_environ(node: ast.expr) -> bool:
    """``os.environ`` or a bare ``environ`` (``from os import environ``)."""
    if isinstance(node, ast.Attribute):
        return node.attr == "environ" and isinstance(node.value, ast.Name) and node.value.id == "os"
    return isinstance(node, ast.Name) and node.id == "environ"


def _constant_module(node: ast.expr) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str) and _MODULE_NAME.fullmatch(node.value):
        return node.value
    return None  # an f-string, a name, a call: only running the program would tell


def _is_variable(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and node.value == SETTINGS_VARIABLE


def _settings_in(tree: ast.AST) -> tuple[bool, str | None]:
    """(the variable is set, the module when it is a plain string)."""
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "setdefault"
            and _is_environ(node.func.value)
            and len(node.args) == 2
            and _is_variable(node.args[0])
        ):
            return True, _constant_module(node.args[1])
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
            if isinstance(target, ast.Subscript) and _is_environ(target.value) and _is_variable(target.slice):
                return True, _constant_module(node.value)
    return False, None


def _imports_django_entry(tree: ast.AST) -> bool:
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(_DJANGO_ENTRY_MODULES):
            return True
        if isinstance(node, ast.Import) and any(a.name.startswith(_DJANGO_ENTRY_MODULES) for a in node.names):
            return True
    return False


def settings_from_source(source: str) -> tuple[str | None, bool]:
    """(settings module, is a Django entry point) for a script's or module's source.

    The module is the constant string of ``os.environ.setdefault("DJANGO_SETTINGS_MODULE", "...")``
    or ``os.environ["DJANGO_SETTINGS_MODULE"] = "..."``; a value computed at run time (an f-string,
    a variable) is not guessed. A file that sets the variable, or imports Django's command-line,
    WSGI or ASGI entry, is an entry point; source that does not parse is not.
    """
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return None, False
    sets, module = _settings_in(tree)
    return module, sets or _imports_django_entry(tree)


def _read(path: Path) -> tuple[str | None, bool]:
    try:
        source = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None, False
    return settings_from_source(source)


# ---------------------------------------------------------------- the command line


def _option_value(args: Sequence[str], names: frozenset[str]) -> list[str]:
    """Every value given to one of ``names`` (``--name value`` or ``--name=value``)."""
    values: list[str] = []
    for index, arg in enumerate(args):
        name, equals, value = arg.partition("=")
        if name in names:
            if equals:
                values.append(value)
            elif index + 1 < len(args):
                values.append(args[index + 1])
    return values


def _module_file(module: str, bases: Sequence[Path]) -> Path | None:
    parts = module.split(".")
    for base in bases:
        path = base.joinpath(*parts)
        for candidate in (path.with_name(path.name + ".py"), path / "__init__.py"):
            if candidate.is_file():
                return candidate
    return None


def settings_file(module: str, cwd: Path) -> Path | None:
    """The file ``module`` would be imported from, looked up under ``cwd`` and ``sys.path`` (None:
    not found), for ``lumen-otel doctor`` to tell a misspelt settings module before start-up."""
    return _module_file(module, [cwd, *(Path(p) for p in sys.path if p and Path(p).is_dir())])


def _server_discovery(args: Sequence[str], cwd: Path) -> Discovery:
    """gunicorn/uvicorn/daphne: the Django WSGI/ASGI module among the positional arguments."""
    for value in _option_value(args, _ENV_OPTIONS):
        key, _, named = value.partition("=")
        if key == SETTINGS_VARIABLE and _MODULE_NAME.fullmatch(named):
            return Discovery(named, True)
    bases = [cwd / d for d in _option_value(args, _APP_DIR_OPTIONS)]
    for value in _option_value(args, _PYTHONPATH_OPTIONS):
        bases.extend(cwd / d for d in value.split(",") if d)
    bases.append(cwd)
    bases.extend(Path(p) for p in sys.path if p and Path(p).is_dir())
    looked_in: list[str] = []
    for arg in args:
        if arg.startswith("-") or not _APP_TARGET.fullmatch(arg):
            continue
        path = _module_file(arg.partition(":")[0], bases)
        if path is None:
            continue
        module, entry_point = _read(path)
        if entry_point:
            return Discovery(module, True, (str(path),))
        looked_in.append(str(path))
    return Discovery(None, False, tuple(looked_in))


def discover(argv: Sequence[str], orig_argv: Sequence[str], cwd: Path) -> Discovery:
    """Where the program about to run sets ``DJANGO_SETTINGS_MODULE``, read from its files.

    ``argv`` is ``sys.argv`` as the launcher sees it (``["manage.py", "check"]``, or the server's
    script path first); ``orig_argv`` the interpreter's own (for ``python -m django``/``-m gunicorn``).
    """
    args = list(argv[1:])
    program = Path(argv[0]).name if argv else ""
    if program == "-m" and "-m" in orig_argv:  # python -m <module> ...: sys.argv is not final yet
        index = list(orig_argv).index("-m")
        program = orig_argv[index + 1] if index + 1 < len(orig_argv) else ""
        args = list(orig_argv[index + 2 :])
    settings_options = _option_value(args, frozenset({"--settings"}))
    if program in _SERVERS:
        return _server_discovery(args, cwd)
    if program in _DJANGO_COMMANDS:
        return Discovery(settings_options[0] if settings_options else None, True, (f"{program} --settings",))
    if not argv or argv[0] in ("", "-c", "-m"):
        return Discovery(None, False)
    script = cwd / argv[0]
    module, entry_point = _read(script)
    if settings_options and entry_point:
        module = settings_options[0]  # manage.py --settings=...: Django applies it over the setdefault
    return Discovery(module, entry_point, (str(script),))


def apply_discovery(environ: MutableMapping[str, str] | None = None) -> str | None:
    """Under the launcher: set ``DJANGO_SETTINGS_MODULE`` (``setdefault``) from the entry point.

    Returns the settings module in effect (None: not a Django program, nothing set).

    Raises:
        SettingsNotFound: a Django entry point, and no settings module anywhere.
    """
    env = os.environ if environ is None else environ
    if env.get(SETTINGS_VARIABLE):
        return env[SETTINGS_VARIABLE]
    try:
        cwd = Path.cwd()
    except OSError:  # the working directory was removed: nothing relative to it can be read
        return None
    found = discover(sys.argv, getattr(sys, "orig_argv", sys.argv), cwd)
    if found.module is not None:
        return env.setdefault(SETTINGS_VARIABLE, found.module)
    if found.entry_point:
        raise SettingsNotFound(found.looked_in)
    return None


# ---------------------------------------------------------------- when to instrument


def settings_being_imported() -> bool:
    """True while ``DJANGO_SETTINGS_MODULE`` is being imported and Django's settings are not set yet
    (``bootstrap()`` called from ``settings.py``)."""
    conf = sys.modules.get("django.conf")
    if conf is None or conf.settings.configured:
        return False
    name = os.environ.get(SETTINGS_VARIABLE)
    return bool(name) and name in sys.modules


_pending: list[Callable[[], None]] = []


def instrument_when_configured(instrument: Callable[[], None]) -> None:
    """Run ``instrument`` now if Django's settings are configured, else when ``django.setup()``
    populates the app registry.

    ``django.setup()`` loads the settings (``manage.py`` may have loaded them just before) and
    then populates the registry, before Django builds its request handler and middleware chain:
    that is the first moment the settings are final, however the program started.
    """
    from django.apps import apps
    from django.conf import settings

    if settings.configured:
        instrument()
        return
    _pending.append(instrument)
    if getattr(apps.populate, "_lumen_instruments", False):
        return
    original = apps.populate

    def populate(*args: Any, **kwargs: Any) -> Any:
        _run_pending()
        return original(*args, **kwargs)

    populate._lumen_instruments = True  # type: ignore[attr-defined]
    populate.__wrapped__ = original  # type: ignore[attr-defined]
    apps.populate = populate


def _run_pending() -> None:
    from django.conf import settings

    try:
        settings.INSTALLED_APPS  # noqa: B018 - loads the settings module now
    except Exception:  # noqa: BLE001 - Django's own error: setup() raises it again right after this
        return
    while _pending:
        instrument = _pending.pop(0)
        try:
            instrument()
        except Exception:  # noqa: BLE001 - a broken instrumentation must not stop Django
            internal_logger().warning("could not enable the Django instrumentation", exc_info=True)
