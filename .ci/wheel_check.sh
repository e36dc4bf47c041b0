#!/usr/bin/env bash
# CI: the wheel a deployment installs works on its own. Builds the wheel from the source tree,
# installs it NON-editable into a fresh virtualenv through the lock (as the README's Quick
# start does), then, from a folder outside the repository, answers the seed question and
# starts `rag serve` until GET /readyz is 200. Any failure exits non-zero with the reason.
#
# Usage: .ci/wheel_check.sh [python]   (the interpreter that builds the wheel and the venv;
# default python3). Everything it makes lives in one temporary folder, removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
PYTHON=${1:-python3}
QUESTION="How many vaccine doses has the US delivered abroad?"
EXPECTED="330 million"
READY_TIMEOUT_S=${READY_TIMEOUT_S:-300}

WORK=$(mktemp -d "${TMPDIR:-/tmp}/rag-wheel-check.XXXXXX")
SERVER_PID=""
cleanup() {
    if [[ -n $SERVER_PID ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
fail() {
    echo "wheel check FAILED: $*" >&2
    exit 1
}
step() { echo "--- wheel check: $* ($(date -u +%H:%M:%S))"; }
START=$SECONDS

# 1. Build from a clean copy of the tree (tracked and new, not ignored, files; symlinks kept),
# so a stale build/ folder or untracked junk in the checkout cannot leak into the wheel.
step "building the wheel"
mkdir -p "$WORK/src" "$WORK/dist"
if git -C "$REPO" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    git -C "$REPO" ls-files -z --cached --others --exclude-standard \
        | (cd "$REPO" && tar --null --ignore-failed-read -T - -cf -) | tar -xf - -C "$WORK/src"
else
    tar --exclude=.venv --exclude=build --exclude=dist -C "$REPO" -cf - . | tar -xf - -C "$WORK/src"
fi
"$PYTHON" -m pip wheel -q --no-deps -w "$WORK/dist" "$WORK/src"
shopt -s nullglob
wheels=("$WORK"/dist/rag_news-*.whl)
[[ ${#wheels[@]} -eq 1 ]] || fail "expected one rag_news wheel in $WORK/dist, found ${#wheels[@]}"
WHEEL=${wheels[0]}
echo "built $(basename "$WHEEL")"

# 2. A fresh virtualenv with the wheel installed the way the README installs (lock, CPU torch).
step "installing it into a fresh virtualenv"
"$PYTHON" -m venv "$WORK/venv"
VPY=$WORK/venv/bin/python
"$VPY" -m pip install -q --upgrade pip
"$VPY" -m pip install -q -c "$REPO/.ci/constraints.txt" torch==2.13.0 "$WHEEL"

# 3. From outside the repository, with nothing of the checkout on the path.
mkdir -p "$WORK/run"
cd "$WORK/run"
unset PYTHONPATH
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 GRADIO_ANALYTICS_ENABLED=False
export RAG_INDEX_DIR=$WORK/index RAG_MODEL_CACHE=$WORK/models
where=$("$VPY" -c "import rag, rag.serve; print(rag.__file__)") \
    || fail "the installed wheel cannot import rag and rag.serve (a package missing from it?)"
[[ $where == "$WORK/venv/"* ]] || fail "rag imported from $where, not from the fresh venv"
"$VPY" - <<'EOF' || fail "the installed package is incomplete"
from importlib.resources import files
import rag.pipeline
seeds = sorted(p.name for p in rag.pipeline.SEEDS_DIR.glob("*.txt"))
assert seeds, f"no seed article in {rag.pipeline.SEEDS_DIR}"
assert files("rag.ui").joinpath("style.css").is_file(), "rag/ui/style.css missing"
assert files("evals.seed").joinpath("questions.jsonl").is_file(), "evals/seed missing"
print("seed articles:", seeds, "in", rag.pipeline.SEEDS_DIR)
EOF

step "rag ask"
answer=$("$WORK/venv/bin/rag" ask "$QUESTION") || fail "rag ask exited with $?"
echo "$answer"
grep -q "$EXPECTED" <<<"$answer" || fail "rag ask did not answer '$EXPECTED'"

step "rag serve until /readyz is 200"
PORT=$("$VPY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$WORK/venv/bin/rag" serve --host 127.0.0.1 --port "$PORT" >"$WORK/serve.log" 2>&1 &
SERVER_PID=$!
"$VPY" - "$PORT" "$SERVER_PID" "$READY_TIMEOUT_S" <<'EOF' || { cat "$WORK/serve.log" >&2; fail "rag serve never became ready"; }
import os, sys, time, urllib.error, urllib.request

port, pid, timeout = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
deadline, last = time.monotonic() + timeout, "no reply"
while time.monotonic() < deadline:
    try:
        os.kill(pid, 0)
    except OSError:
        sys.exit(f"rag serve exited before /readyz was 200 (last: {last})")
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as r:
            if r.status == 200:
                print("GET /readyz:", r.status, r.read().decode()[:200])
                sys.exit(0)
            last = f"HTTP {r.status}"
    except urllib.error.HTTPError as exc:
        last = f"HTTP {exc.code}"
    except OSError as exc:
        last = str(exc)
    time.sleep(1)
sys.exit(f"no 200 from /readyz within {timeout:.0f} s (last: {last})")
EOF
kill "$SERVER_PID"
wait "$SERVER_PID" 2>/dev/null || true
SERVER_PID=""
step "passed in $((SECONDS - START)) s"
