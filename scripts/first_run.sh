#!/bin/bash
# A new user's first run, measured: git clone -> make run -> the first answered POST /search; then the venv's size
# and `kb search` with and without the running server. Usage: scripts/first_run.sh [REPO] [BRANCH]
# Fresh model cache (the int8 build and every embedding happen, as on a new machine); pip's own cache is used.
set -u
REPO=${1:-$(git rev-parse --show-toplevel)}
BRANCH=${2:-$(git -C "$REPO" rev-parse --abbrev-ref HEAD)}
DIR=/tmp/kb-first-run PORT=${PORT:-8765}
rm -rf "$DIR" "$DIR-cache"
echo "start: $(uptime)"
t0=$(date +%s.%N)
git clone -q -b "$BRANCH" "$REPO" "$DIR" && cd "$DIR" || exit 1
export KB_MODEL_CACHE=$DIR-cache KB_HOME=$DIR/data
setsid make run PORT="$PORT" > "$DIR.log" 2>&1 &
MAKE=$!
until curl -s -m 5 -X POST "http://127.0.0.1:$PORT/search" -H 'Content-Type: application/json' \
        -d '{"query":"煤层气利用率目标","top_k":3}' 2>/dev/null | grep -q '"hits":\[{'; do
  kill -0 $MAKE 2>/dev/null || { echo "make run stopped; see $DIR.log"; exit 1; }
  sleep 1
done
echo "clone to first answer: $(echo "$(date +%s.%N) - $t0" | bc) s; $(uptime)"
echo "stages (file times): $(stat -c '%y %n' .venv/.runtime "$KB_MODEL_CACHE"/models/*.onnx data/manifest.sqlite3 | cut -c12-19,36-)"
echo "runtime venv: $(du -sm .venv | cut -f1) MB"
for i in 1 2 3; do /usr/bin/time -f "kb search with the server: %e s" .venv/bin/kb search 煤层气利用率 -k 5 > /dev/null; done
for i in 1 2 3; do KB_URL=off /usr/bin/time -f "kb search in-process: %e s" .venv/bin/kb search 煤层气利用率 -k 5 > /dev/null; done
echo "end: $(uptime)"
kill -TERM -- -$MAKE
