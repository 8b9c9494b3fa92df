#!/usr/bin/env bash
# Gate a model upgrade with ccbench as a plain shell script (any CI system, or your machine).
#
#   OLD_MODEL=models/old.gguf NEW_MODEL=models/new.gguf examples/gate.sh
#   BASELINE=ci/baseline.json NEW_MODEL=models/new.gguf examples/gate.sh   # committed baseline: no old run
#
# Models are what `ccbench backend start llamacpp --model` takes: "smollm2" (packaged) or a .gguf path.
# Exit code is ccbench gate's: 0 the candidate holds, 1 regression, 2 usage error (or the backend failed).
set -euo pipefail

PORT="${PORT:-8080}"
REPEAT="${REPEAT:-3}"
MAX_OUTPUT_TOKENS="${MAX_OUTPUT_TOKENS:-2048}"  # bounds a turn of a model that never stops; same for both runs
SUITE="${SUITE:-smoke}"
OUT="${OUT:-ccbench-out}"
GATE_CONFIG="${GATE_CONFIG:-examples/gate.yaml}"
BASE_URL="http://127.0.0.1:${PORT}/v1"
mkdir -p "$OUT"
backend_pid=""

start_backend() {  # $1: model; returns once llama-server answers /health
    ccbench backend start llamacpp --model "$1" --port "$PORT" >"$OUT/backend.log" 2>&1 &
    backend_pid=$!
    for _ in $(seq 1 300); do
        if curl -sf "http://127.0.0.1:${PORT}/health" >/dev/null; then
            return 0
        fi
        if ! kill -0 "$backend_pid" 2>/dev/null; then
            echo "backend exited:" >&2
            tail -n 30 "$OUT/backend.log" >&2
            exit 2
        fi
        sleep 1
    done
    echo "backend not healthy after 300 s" >&2
    exit 2
}

stop_backend() {
    if [ -n "$backend_pid" ]; then
        kill "$backend_pid" 2>/dev/null || true
        wait "$backend_pid" 2>/dev/null || true
        backend_pid=""
    fi
}
trap stop_backend EXIT

run_model() {  # $1: model, $2: output name
    start_backend "$1"
    ccbench run --backend llamacpp --base-url "$BASE_URL" --suite "$SUITE" --repeat "$REPEAT" \
        --max-output-tokens "$MAX_OUTPUT_TOKENS" --out "$OUT/$2.json" --html "$OUT/$2.html" --junit "$OUT/$2.xml"
    stop_backend
}

if [ -n "${BASELINE:-}" ]; then
    cp "$BASELINE" "$OUT/baseline.json"
else
    run_model "${OLD_MODEL:?set OLD_MODEL (or BASELINE to a committed results file)}" baseline
fi
run_model "${NEW_MODEL:?set NEW_MODEL}" candidate

status=0
ccbench gate --baseline "$OUT/baseline.json" --candidate "$OUT/candidate.json" --config "$GATE_CONFIG" \
    --junit "$OUT/gate.xml" --markdown "$OUT/gate.md" --html "$OUT/gate.html" || status=$?
echo "reports: $OUT/gate.xml $OUT/gate.md $OUT/gate.html (exit $status)"
exit "$status"
