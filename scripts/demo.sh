#!/usr/bin/env bash
# rtbuild demo (run by `make demo`, after the venv and the engine are up):
#   1. build a runtime image with the jupyter + cacerts plugins from debian:bookworm,
#   2. run it: start the Jupyter kernel gateway, query its HTTP API, run code in a kernel,
#   3. ask for the same runtime image again and show it is reused, with both durations.
# Safe to run repeatedly: a second `make demo` reuses the image from the first.
set -euo pipefail
cd "$(dirname "$0")/.."

RTBUILD=${RTBUILD:-.venv/bin/rtbuild}
PY=${PY:-.venv/bin/python}
DOCKER=${DOCKER:-/usr/bin/docker}
BASE=${RTBUILD_DEMO_BASE:-debian:bookworm}
CONTAINER="rtbuild-demo-$$"
WORK=$(mktemp -d)

cleanup() {
  "$DOCKER" rm -f "$CONTAINER" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
# Progress: the JSON events on stderr, shortened to their messages and build steps.
progress() {
  "$PY" -u -c '
import json, sys
for line in sys.stdin:
    try:
        event = json.loads(line)
    except ValueError:
        print(line, end="", file=sys.stderr); continue
    if event.get("message"):
        print("  rtbuild:", event["message"], file=sys.stderr)
    elif event.get("event") == "step":
        print("    step:", event.get("step", "")[:110], file=sys.stderr)
'
}
field() { "$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2], {}, {"d": d}))' "$1" "$2"; }

if ! "$DOCKER" image inspect "$BASE" >/dev/null 2>&1; then
  say "$BASE is missing: creating the local base images (scripts/engine.sh)"
  bash scripts/engine.sh
fi

build() {  # build OUT.json: one `rtbuild runtime` call, progress on stderr
  "$RTBUILD" runtime --base "$BASE" --plugin jupyter --plugin cacerts --json >"$1"
}

timed_build() {  # timed_build OUT.json: build, show progress, print the wall seconds
  local start
  start=$(date +%s.%N)
  build "$1" 2>&1 | progress >&2 || return  # command substitution does not inherit set -e
  "$PY" -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.2f}')" "$start" "$(date +%s.%N)"
}

say "1. rtbuild runtime --base $BASE --plugin jupyter --plugin cacerts"
first_wall=$(timed_build "$WORK/first.json")
IMAGE=$(field "$WORK/first.json" 'd["image"]')
echo "image:  $IMAGE"
echo "tags:   $(field "$WORK/first.json" '", ".join(d["tags"])')"
echo "tier:   $(field "$WORK/first.json" 'd["details"]["runtime_tier"]')   (cached: $(field "$WORK/first.json" 'd["cached"]'))"

say "2. Run it: the kernel gateway on 127.0.0.1, its HTTP API, and code in a kernel"
"$DOCKER" run -d --name "$CONTAINER" -p 127.0.0.1::8888 "$IMAGE" rtbuild-jupyter-gateway >/dev/null
PORT=$("$DOCKER" port "$CONTAINER" 8888/tcp | head -n1 | sed 's/.*://')
echo "GET http://127.0.0.1:$PORT/api/kernelspecs ->"
"$PY" - "http://127.0.0.1:$PORT" <<'PYEOF'
import json, sys, time, urllib.request

opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: no proxy
deadline = time.monotonic() + 120  # the gateway needs a few seconds to start
while True:
    try:
        with opener.open(sys.argv[1] + "/api/kernelspecs", timeout=5) as response:
            specs = json.load(response)
        break
    except OSError:
        if time.monotonic() > deadline:
            raise
        time.sleep(0.5)
print("  default kernel:", specs["default"])
for name, spec in specs["kernelspecs"].items():
    print("  kernelspec:", name, "->", " ".join(spec["spec"]["argv"][:3]), "...")
PYEOF
echo "rtbuild-jupyter-check (runs code in a new kernel over the gateway's websocket):"
"$DOCKER" exec "$CONTAINER" rtbuild-jupyter-check \
  "import platform, sys; print('  6 * 7 =', 6 * 7, '| Python', sys.version.split()[0], 'on', platform.freedesktop_os_release()['PRETTY_NAME'])"
# shellcheck disable=SC2016  # expanded inside the container
echo "CA bundle for pip/requests/curl/node in the image: $("$DOCKER" exec "$CONTAINER" sh -c 'echo $PIP_CERT')"
"$DOCKER" rm -f "$CONTAINER" >/dev/null

say "3. The same command again"
second_wall=$(timed_build "$WORK/second.json")
SECOND=$(field "$WORK/second.json" 'd["image"]')
echo "image:  $SECOND"
echo "tier:   $(field "$WORK/second.json" 'd["details"]["runtime_tier"]')   (cached: $(field "$WORK/second.json" 'd["cached"]'))"
if [ "$SECOND" != "$IMAGE" ] || [ "$(field "$WORK/second.json" 'd["cached"]')" != "True" ]; then
  echo "demo: the second request was not reused" >&2
  exit 1
fi

say "Durations"
printf '  first request:  %6ss  (rtbuild %ss, tier %s)\n' "$first_wall" \
  "$(field "$WORK/first.json" 'd["duration_s"]')" "$(field "$WORK/first.json" 'd["details"]["runtime_tier"]')"
printf '  second request: %6ss  (rtbuild %ss, tier %s: nothing built)\n' "$second_wall" \
  "$(field "$WORK/second.json" 'd["duration_s"]')" "$(field "$WORK/second.json" 'd["details"]["runtime_tier"]')"
