#!/usr/bin/env bash
# Sets everything up, then runs the demo on the simulated radio (Ctrl-C stops it).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
source scripts/env.sh
exec python apps/ria_agent.py demo "$@"
