#!/usr/bin/env bash
# Reproduces the OMZ ONNX files of the `omz-0095` pack from Intel's OpenVINO IR originals: converts
# each IR (sha256-checked against the manifest's `derived_from`) with openvino2onnx 1.1.0 and every
# Python package pinned, then checks that the result is the same graph as the pinned ONNX file (same
# nodes, weights, inputs and outputs; openvino2onnx orders nodes by Python's string hashing, so the
# bytes differ between runs while the graph does not) and gives the same outputs on fixed inputs.
# Usage: scripts/convert-omz.sh [OUT_DIR]   (default target/omz-converted; IR files from the model mirror)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$root"
out=${1:-target/omz-converted}
mirror=${FACEGATE_MODEL_MIRROR:?set FACEGATE_MODEL_MIRROR to a folder holding the OpenVINO IR files}
venv=target/convert-python
if [ ! -x "$venv/bin/openvino2onnx" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check openvino2onnx==1.1.0 onnx==1.17.0 numpy==2.1.3 \
    networkx==3.6.1 protobuf==7.36.2 colorlog==6.12.0 tabulate==0.10.0 termcolor==3.3.0 ml_dtypes==0.6.0 \
    typing_extensions==4.16.0
fi
mkdir -p "$out"
PYTHONHASHSEED=0 "$venv/bin/python" scripts/convert_omz.py models/manifest.toml "$mirror" "$out" "$venv/bin/openvino2onnx"
