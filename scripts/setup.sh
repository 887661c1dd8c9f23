#!/usr/bin/env bash
# Set up vsearch in .venv/: Python packages (CPU torch first) and the embedded Redis Stack's OpenSSL 1.1.
# Idempotent: a second run takes seconds. Used by scripts/demo.sh and scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
TORCH_VERSION=2.13.0  # the CPU build; an unpinned torch pulls a CUDA build of several GB
VENV=.venv
STAMP=$VENV/.vsearch-installed

if [ ! -x "$VENV/bin/python" ]; then
  echo "setup: creating $VENV" >&2
  if ! "$PYTHON" -m venv "$VENV" 2>/dev/null; then
    # Debian splits venv's pip bootstrap into python3-venv.
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
      rm -rf "$VENV" && "$PYTHON" -m venv "$VENV"
    else
      echo "setup: '$PYTHON -m venv' failed: install python3-venv (sudo apt-get install python3-venv)" >&2
      exit 1
    fi
  fi
fi

pip_install() {
  # Drop pip's notes about configured package folders that do not exist on this machine.
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "$@" \
    2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
}

# Reinstall only when the project's dependencies changed.
if [ ! -f "$STAMP" ] || [ pyproject.toml -nt "$STAMP" ]; then
  echo "setup: installing Python packages (the first time takes a few minutes)" >&2
  pip_install "torch==$TORCH_VERSION"
  pip_install -e ".[test,ray]"  # ray: so the tests cover --engine ray
  touch "$STAMP"
fi

# vsearch's own bytecode, made once: an editable install otherwise compiles its modules in every process that
# cannot write them (PYTHONDONTWRITEBYTECODE), ~0.1 s of each command's start-up.
"$VENV/bin/python" -m compileall -q vsearch >/dev/null
"$VENV/bin/vsearch" server setup
# Export the default text model to ONNX once, so the first text query starts fast (offline, ~30 s once).
"$VENV/bin/vsearch" models prepare \
  || echo "setup: no fast query model yet; the first text query will make it" >&2
