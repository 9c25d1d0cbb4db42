#!/usr/bin/env bash
# A/B of remote_write ingest between gmc builds: for each binary, in alternation, start it
# on a fresh data dir, create the series with one warm-up second, then send 10k-sample
# requests at RATE samples/s for DUR seconds and print the server's CPU per ingested
# sample (user+system, from /proc) and the client-side latency percentiles.
#
#   benches/rwload/ab.sh RATE DUR ROUNDS BIN[@v2]...
#   e.g. benches/rwload/ab.sh 400000 10 3 /tmp/gmc-old /tmp/gmc-new
#
# `BIN@v2` sends the same series and samples as remote write 2.0 (rate 0: as fast as
# answered), e.g. `ab.sh 0 15 3 /tmp/gmc /tmp/gmc@v2` compares the two protocol versions.
#
# Loopback only; every server is stopped by its PID; each run is bounded by DUR.
set -euo pipefail
rate=$1 dur=$2 rounds=$3
shift 3
here=$(cd "$(dirname "$0")" && pwd)
load=$here/target/release/gmc-rwload
(cd "$here" && cargo build --release -q)
port=9471
for ((r = 1; r <= rounds; r++)); do
  for spec in "$@"; do
    bin=${spec%@v2}
    v2=()
    [[ $spec == *@v2 ]] && v2=(--v2)
    dir=$(mktemp -d /tmp/gmc-rwab.XXXXXX)
    "$bin" serve --listen 127.0.0.1:$port --data-dir "$dir" >"$dir.log" 2>&1 &
    pid=$!
    for _ in $(seq 100); do curl -sf 127.0.0.1:$port/-/ready >/dev/null && break; sleep 0.1; done
    "$load" --addr 127.0.0.1:$port --samples 10000 --conc 4 --rate 200000 --duration-s 1 --start-offset-s 7200 "${v2[@]}" >/dev/null
    t0=$(awk '{print $14 + $15}' /proc/$pid/stat)
    out=$("$load" --addr 127.0.0.1:$port --samples 10000 --conc 4 --rate "$rate" --duration-s "$dur" "${v2[@]}")
    t1=$(awk '{print $14 + $15}' /proc/$pid/stat)
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    rm -rf "$dir" "$dir.log"
    ticks=$(getconf CLK_TCK)
    python3 - "$spec" "$r" "$((t1 - t0))" "$ticks" "$out" <<'PY'
import json, sys
bin, r, cpu, hz, out = sys.argv[1:]
d = json.loads(out)
l = d["latency_ms"]
n = d["requests_ok"] * d["samples_per_request"]
us = int(cpu) / int(hz) * 1e6 / max(n, 1)
print(f"round {r} {bin}: server_cpu_us_per_sample={us:.3f} samples_per_s={d['samples_per_s']:.0f} "
      f"p50_ms={l['p50']:.1f} p90_ms={l['p90']:.1f} p99_ms={l['p99']:.1f} errors={d['requests_err']}")
PY
  done
done
