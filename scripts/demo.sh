#!/usr/bin/env bash
# The main job, end to end: set up, train three small models, add them to a fresh amms project,
# publish a second version, serve them and make predictions.
#   scripts/demo.sh            serve until Ctrl-C after the sample requests
#   scripts/demo.sh --once     stop after the sample requests (used by CI)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
PY=.venv/bin/python
AMMS=.venv/bin/amms
PORT="${PORT:-8000}"
DEMO=.amms-demo
rm -rf "$DEMO" && mkdir -p "$DEMO"
cd "$DEMO"

echo "== train three small models"
../$PY ../examples/train_demo.py .
echo "== amms init / add-model / bump-version"
../$AMMS init .
../$AMMS add-model sentiment.pkl --name sentiment --example '["a wonderful film"]'
../$AMMS add-model iris.pkl --name iris --example '[[5.1, 3.5, 1.4, 0.2]]'
../$AMMS add-model churn.joblib --name churn --example customers.csv
../$AMMS bump-version iris
../$AMMS list

echo "== amms serve --watch on http://127.0.0.1:$PORT (docs: http://127.0.0.1:$PORT/docs)"
../$AMMS serve --watch --port "$PORT" &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
    curl -sf "http://127.0.0.1:$PORT/health/ready" >/dev/null 2>&1 && break
    sleep 0.2
done
request() { echo "\$ curl -X POST $1 -d '$2'"; curl -sS -X POST "http://127.0.0.1:$PORT$1" -H 'content-type: application/json' -d "$2"; echo; }
request /models/sentiment/predict '{"inputs": ["what a wonderful story", "boring and awful"]}'
request /models/iris/predict '{"inputs": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]], "probabilities": true}'
request /v1/models/iris:predict '{"instances": [[5.1, 3.5, 1.4, 0.2]]}'
request /models/churn/predict '{"inputs": [{"city": "paris", "age": 25, "income": null, "member": false}], "probabilities": true}'
request /v2/models/sentiment/infer '{"inputs": [{"name": "text", "shape": [1], "datatype": "BYTES", "data": ["loved it"]}]}'
echo "== publish 1.0.2 while serving; it goes live without a restart"
../$AMMS bump-version iris
sleep 1.5
request /models/iris/predict '{"inputs": [[5.1, 3.5, 1.4, 0.2]]}'
../$AMMS status --url "http://127.0.0.1:$PORT"
if [ "${1:-}" = "--once" ]; then
    exit 0
fi
echo "Serving until Ctrl-C. Try: curl -X POST http://127.0.0.1:$PORT/models/iris/predict -d '{\"inputs\": [[5.1, 3.5, 1.4, 0.2]]}'"
wait $server
