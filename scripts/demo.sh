#!/usr/bin/env bash
# The main job: sets up a fresh machine, exports the pretrained EfficientNet-Lite0 to an int8
# .iif, runs it with intinfer and prints accuracy and latency against PyTorch fp32.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec python3 examples/efficientnet_lite0.py "$@"
