#!/usr/bin/env bash
# Peak memory of one peerbench-style ingest: for each "LABEL=BINARY[:CONFIG]" argument, in
# alternation, start gmc on a fresh data dir (optionally with a TOML config), send the
# peerbench workload (600 one-second ticks, as fast as accepted), and print the ingest
# rate, the server's CPU per sample and its VmHWM / VmRSS.
#
#   benches/mem/hwm.sh ROUNDS LABEL=BIN[:CONFIG] ...
#
# Needs ../shared/tools/peerbench/loadgen built (cargo build --release there). Loopback
# only; every server is stopped by its PID.
set -euo pipefail
rounds=$1
shift
here=$(cd "$(dirname "$0")/../.." && pwd)
load=${LOADGEN:-$here/../shared/tools/peerbench/loadgen/target/release/peerbench-loadgen}
port=9472
for ((r = 1; r <= rounds; r++)); do
  for spec in "$@"; do
    label=${spec%%=*} rest=${spec#*=}
    bin=${rest%%:*} cfg=
    [[ $rest == *:* ]] && cfg=${rest#*:}
    dir=$(mktemp -d /tmp/gmc-hwm.XXXXXX)
    args=(serve --listen 127.0.0.1:$port --data-dir "$dir")
    [ -n "$cfg" ] && args+=(--config "$cfg")
    "$bin" "${args[@]}" >"$dir.log" 2>&1 &
    pid=$!
    for _ in $(seq 100); do curl -sf 127.0.0.1:$port/-/ready >/dev/null && break; sleep 0.1; done
    t0=$(awk '{print $14 + $15}' /proc/$pid/stat)
    out=$("$load" --url http://127.0.0.1:$port/api/v1/write --ticks 600)
    t1=$(awk '{print $14 + $15}' /proc/$pid/stat)
    hwm=$(awk '/VmHWM/ {print $2}' /proc/$pid/status)
    rss=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    rm -rf "$dir" "$dir.log"
    python3 - "$label" "$r" "$((t1 - t0))" "$(getconf CLK_TCK)" "$hwm" "$rss" "$out" <<'PY'
import json, sys
label, r, cpu, hz, hwm, rss, out = sys.argv[1:]
d = json.loads(out)
n = d.get("samples_ok", 0)
rate = d.get("samples_per_s", 0)
us = int(cpu) / int(hz) * 1e6 / max(n, 1)
print(f"round {r} {label}: samples_per_s={rate:.0f} cpu_us_per_sample={us:.3f} "
      f"hwm_mib={int(hwm)/1024:.1f} rss_mib={int(rss)/1024:.1f}")
PY
  done
done
