#!/usr/bin/env bash
# What a retried write costs next to the first: start one gmc build on a fresh data dir,
# create the series with a warm-up, send 10k-sample requests for DUR seconds from a fixed
# start time, then send exactly the same requests again (a sender retrying everything),
# and print the server's CPU per sample (user+system, from /proc) and the latency of each.
#
#   benches/rwload/retry.sh BIN [RATE] [DUR]
#   e.g. benches/rwload/retry.sh target/release/gmc 200000 6
#
# Loopback only; the server is stopped by its PID; each run is bounded by DUR.
set -euo pipefail
bin=$1 rate=${2:-200000} dur=${3:-6}
here=$(cd "$(dirname "$0")" && pwd)
load=$here/target/release/gmc-rwload
(cd "$here" && cargo build --release -q)
port=9478
dir=$(mktemp -d /tmp/gmc-retry.XXXXXX)
"$bin" serve --listen 127.0.0.1:$port --data-dir "$dir" >"$dir.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -rf "$dir" "$dir.log"' EXIT
for _ in $(seq 100); do curl -sf 127.0.0.1:$port/-/ready >/dev/null && break; sleep 0.1; done
cpu() { awk '{print $14 + $15}' /proc/$pid/stat; }
start_ms=$(( $(date +%s) * 1000 - 3600000 ))
"$load" --addr 127.0.0.1:$port --samples 10000 --conc 4 --rate 200000 --duration-s 2 --start-offset-s 7200 >/dev/null
for what in first retry; do
  c0=$(cpu)
  out=$("$load" --addr 127.0.0.1:$port --samples 10000 --conc 1 --rate "$rate" --duration-s "$dur" --start-ms "$start_ms")
  c1=$(cpu)
  python3 - "$what" "$((c1 - c0))" "$(getconf CLK_TCK)" "$out" <<'PY'
import json, sys
what, cpu, hz, out = sys.argv[1:]
d = json.loads(out)
l = d["latency_ms"]
n = d["requests_ok"] * d["samples_per_request"]
print(f"{what:5s} server_cpu_us_per_sample={int(cpu) / int(hz) * 1e6 / max(n, 1):.3f} "
      f"p50_ms={l['p50']:.1f} p99_ms={l['p99']:.1f} ok={d['requests_ok']} errors={d['requests_err']}")
PY
done
