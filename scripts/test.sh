#!/usr/bin/env bash
# Sets everything up, then runs the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# The existing RIA agent (ria-toolkit-oss 0.1.7) for the hub's compatibility test. It pins its own numpy,
# so it gets a venv of its own, apart from GNU Radio's interpreter.
if [ ! -x .venv-ria-agent/bin/ria-agent ]; then
    /usr/bin/python3 -m venv .venv-ria-agent
    .venv-ria-agent/bin/python -m pip install -q --disable-pip-version-check ria-toolkit-oss==0.1.7 websockets  # its WebSocket client is an undeclared dependency
fi
source scripts/env.sh
exec python -m pytest tests "$@"
