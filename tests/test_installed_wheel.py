"""The CLI from an installed wheel, run outside the checkout: ``--help``, ``collector``, ``demo``.

The wheel is built from this tree and installed with ``--no-deps`` into a fresh venv; its
dependencies come from the dev venv through a ``.pth`` line (a plain path: the dev venv's own
``.pth`` files, among them the editable install of this checkout, are not read), so nothing is
downloaded and the package imported is the wheel's, not the checkout's (the first test checks
that). ``opentelemetry-instrument`` is written into the venv's ``bin/`` as pip writes it for
``opentelemetry-instrumentation``. Every command runs from a directory outside the repository,
with the dev venv's ``bin/`` off ``PATH``.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import REPO, VENV_BIN

COLLECTOR = REPO / "bin" / "lumen-otelcol"
_DROPPED = ("LUMEN_", "OTEL_", "LOG_", "DJANGO_SETTINGS_MODULE", "PYTHONPATH", "VIRTUAL_ENV", "NO_COLOR")


@dataclass(frozen=True)
class Installed:
    venv: Path
    python: Path
    wheel: Path
    cwd: Path  # outside the repository

    @property
    def bin(self) -> Path:
        return self.python.parent

    @property
    def site_packages(self) -> Path:
        return self.venv / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}" / "site-packages"

    def env(self, *extra_path: Path) -> dict[str, str]:
        path = [str(self.bin), *map(str, extra_path)]
        path += [p for p in os.environ.get("PATH", "").split(os.pathsep) if p and Path(p) != VENV_BIN]
        env = {k: v for k, v in os.environ.items() if not k.startswith(_DROPPED)}
        env.update(PATH=os.pathsep.join(path), COLUMNS="200", TERM="dumb")
        return env

    def run(self, *args: str, extra_path: tuple[Path, ...] = (), timeout: float = 60):
        done = subprocess.run(
            [str(self.bin / "lumen-otel"), *args],
            cwd=self.cwd,
            env=self.env(*extra_path),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        return done.returncode, flat(done.stdout), flat(done.stderr)

    def carries_configs(self) -> bool:
        return (self.site_packages / "lumen_otel" / "cli" / "collector-config" / "local.yaml").is_file()


def flat(text: str) -> str:
    """Rich's boxes and line wrapping out of the way: one space between words."""
    return " ".join(re.sub(r"[│╭╮╰╯─┃━]", " ", text).split())


def _fail_or_skip(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


def _build_wheel(out: Path) -> Path:
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(REPO)]
    if importlib.util.find_spec("hatchling") is not None:
        command.insert(4, "--no-build-isolation")  # offline: the dev venv has the build backend
    done = subprocess.run(command, capture_output=True, text=True, timeout=180, check=False)
    if done.returncode != 0:
        _fail_or_skip(f"could not build the wheel (the build backend may need the index):\n{done.stderr}")
    (wheel,) = out.glob("lumen_otel-*.whl")
    return wheel


def _console_script(python: Path, name: str) -> str:
    """What pip writes into bin/ for a console_scripts entry point."""
    (entry,) = (e for e in importlib.metadata.entry_points(group="console_scripts") if e.name == name)
    module, _, attr = entry.value.partition(":")
    return (
        f"#!{python}\nimport sys\nfrom {module} import {attr}\n"
        f"if __name__ == '__main__':\n    sys.exit({attr}())\n"
    )


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    root = tmp_path_factory.mktemp("wheel")
    assert not root.resolve().is_relative_to(REPO), root
    wheel = _build_wheel(root / "dist")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=60)
    python = venv / "bin" / "python"
    # Install before the .pth exists, so pip sees no lumen-otel already installed.
    pip = [sys.executable, "-m", "pip", "--python", str(python)]
    subprocess.run(
        [*pip, "install", "-q", "--no-deps", "--no-index", str(wheel)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    installed = Installed(venv, python, wheel, root / "elsewhere")
    installed.cwd.mkdir()
    dev_paths = dict.fromkeys([sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]])
    (installed.site_packages / "_dev_venv_dependencies.pth").write_text("\n".join(dev_paths) + "\n")
    launcher = installed.bin / "opentelemetry-instrument"
    launcher.write_text(_console_script(python, "opentelemetry-instrument"))
    launcher.chmod(0o755)
    return installed


def test_the_package_imported_is_the_wheels_not_the_checkouts(installed):
    done = subprocess.run(
        [str(installed.python), "-c", "import lumen_otel.cli.collector as c; print(c.__file__)"],
        cwd=installed.cwd,
        env=installed.env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert Path(done.stdout.strip()).is_relative_to(installed.site_packages), done.stdout


def test_help_lists_every_command(installed):
    code, out, err = installed.run("--help")
    assert (0, "") == (code, err)
    for command in ("doctor", "demo", "trace", "redact", "collector"):
        assert f" {command} " in out, out


def test_collector_help_lists_validate_and_run_and_the_config_names(installed):
    code, out, err = installed.run("collector", "--help")
    assert (0, "") == (code, err)
    assert "validate Check the config(s)" in out, out
    assert "run Run the collector in the foreground" in out, out
    code, out, _ = installed.run("collector", "validate", "--help")
    assert 0 == code
    assert "local, gateway, gateway-keyed, gateway-traces, gateway-search" in out, out


@pytest.mark.parametrize("subcommand", ["validate", "run"])
def test_collector_without_the_binary_says_where_to_get_it(installed, subcommand):
    code, out, err = installed.run("collector", subcommand, "local")
    assert 2 == code
    assert "" == out
    assert err.startswith("lumen-otel: the lumen-otelcol collector binary was not found"), err
    assert "It is not part of the Python package" in err
    assert "`make collector`" in err
    assert "put the binary on PATH" in err


def test_demo_with_collector_but_no_binary_exits_2_before_starting_anything(installed):
    code, out, _ = installed.run("demo", "--collector", "--log-dir", str(installed.cwd / "logs"))
    assert 2 == code, out
    assert out.startswith("error: --collector needs the lumen-otelcol binary: run `make collector`"), out
    assert "the binary is not part of the Python package" in out
    assert "Without --collector the demo needs nothing more" in out
    assert not (installed.cwd / "logs").exists()


@pytest.mark.integration
def test_demo_runs_from_the_installed_package(installed):
    """Four services from ``lumen_otel.demo`` in the wheel, one request, one trace, PHI masked."""
    cid = str(uuid.uuid4())
    log_dir = installed.cwd / "demo-logs"
    code, out, err = installed.run("demo", "--cid", cid, "--log-dir", str(log_dir), timeout=180)
    try:
        assert 0 == code, out + err
        assert f"Request {cid} trace {uuid.UUID(cid).hex}" in out, out
        assert "4 services · 1 correlation ID · 1 trace" in out, out
        assert "PID|1||[REDACTED:MRN]^^^LUMEN^MR||[REDACTED:NAME]" in out, out
        assert sorted(p.name for p in log_dir.glob("*.log")) == [
            "dubin.log",
            "hl7-listener.log",
            "media.log",
            "reports.log",
        ]
    finally:
        shutil.rmtree(log_dir, ignore_errors=True)


@pytest.fixture
def collector_on_path(tmp_path: Path) -> Path:
    if not COLLECTOR.exists():
        _fail_or_skip("bin/lumen-otelcol is not built (make collector)")
    directory = tmp_path / "tools"
    directory.mkdir()
    (directory / "lumen-otelcol").symlink_to(COLLECTOR)
    return directory


@pytest.mark.collector
def test_collector_on_path_validates_a_config_given_by_path(installed, collector_on_path):
    config = REPO / "collector-config" / "local.yaml"
    code, out, err = installed.run("collector", "validate", str(config), extra_path=(collector_on_path,))
    assert 0 == code, out + err
    assert out.endswith(f"valid: {config}"), out + err


@pytest.mark.collector
def test_collector_on_path_finds_a_named_config_or_says_where_it_is(installed, collector_on_path):
    """With the configs packaged (pyproject ``force-include``) a name works; without, exit 2 and why."""
    code, out, err = installed.run("collector", "validate", "local", extra_path=(collector_on_path,))
    if installed.carries_configs():
        packaged = installed.site_packages / "lumen_otel" / "cli" / "collector-config" / "local.yaml"
        assert 0 == code, out + err
        assert out.endswith(f"valid: {packaged}"), out
    else:
        assert 2 == code, out + err
        assert err.startswith("lumen-otel: no collector config 'local': the named configs"), err
        assert "this installed package does not carry them" in err
        assert "give the file's path" in err
