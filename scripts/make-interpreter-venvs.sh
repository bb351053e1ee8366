#!/usr/bin/env bash
# One venv per supported interpreter found on this machine, for the per-interpreter shutdown tests
# (tests/reliability/test_shutdown_modes.py): build/venvs/py3.X with lumen-otel[all] installed
# editable (the tests run the working tree's code under each interpreter).
#
# Interpreters are looked for as ~/.pyenv/versions/3.X.*/bin/python (the newest patch release of
# each minor), else python3.X on PATH. Idempotent: a venv whose stamp matches pyproject.toml and
# whose interpreter still imports lumen_otel is left alone, so a second run takes a second or two.
#
# Usage: scripts/make-interpreter-venvs.sh [3.10 3.11 ...]   (default: 3.10 3.11 3.12 3.13)
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$PWD"
minors=("$@")
[[ ${#minors[@]} -gt 0 ]] || minors=(3.10 3.11 3.12 3.13)
pyenv_root="${PYENV_ROOT:-$HOME/.pyenv}"
stamp_value="$(sha256sum pyproject.toml | cut -d' ' -f1)"

find_interpreter() {
  local minor="$1" candidate=""
  if [[ -d "$pyenv_root/versions" ]]; then
    candidate="$(ls -d "$pyenv_root/versions/$minor".* 2>/dev/null | grep -E "/$minor\.[0-9]+$" | sort -V | tail -n 1 || true)"
    if [[ -n "$candidate" && -x "$candidate/bin/python" ]]; then
      echo "$candidate/bin/python"
      return 0
    fi
  fi
  command -v "python$minor" 2>/dev/null || true
}

made=0
for minor in "${minors[@]}"; do
  interpreter="$(find_interpreter "$minor")"
  if [[ -z "$interpreter" ]]; then
    echo "==> python$minor: not found on this machine, no venv made"
    continue
  fi
  venv="build/venvs/py$minor"
  stamp="$venv/.lumen-stamp"
  if [[ -f "$stamp" && "$(cat "$stamp")" == "$stamp_value" ]] \
    && "$venv/bin/python" -c 'import lumen_otel, uvicorn, fastapi' >/dev/null 2>&1; then
    echo "==> $venv: up to date ($("$venv/bin/python" -c 'import platform; print(platform.python_version())'))"
    continue
  fi
  echo "==> $venv: installing lumen-otel[all] with $interpreter"
  rm -rf "$venv"
  "$interpreter" -m venv "$venv"
  "$venv/bin/python" -m pip install -q --upgrade "pip>=25.1"
  "$venv/bin/python" -m pip install -q -e "$repo[all]"
  "$venv/bin/python" -c 'import lumen_otel, uvicorn, fastapi'
  echo "$stamp_value" >"$stamp"
  made=$((made + 1))
done
echo "==> interpreter venvs ready (${made} made or refreshed) in build/venvs/"
