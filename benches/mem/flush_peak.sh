#!/usr/bin/env bash
# Peak memory across ingest, flush and queries: for each "LABEL=BINARY" argument, in
# alternation, start gmc on a fresh data dir, send the peerbench workload (600 ticks),
# read VmHWM, flush the head to a block, read VmHWM and VmRSS again, then run the 16
# peerbench queries once each (benches/query_mem.py, which resets VmHWM per query).
#
#   benches/mem/flush_peak.sh ROUNDS LABEL=BIN ...
#
# Prints ingest_hwm (after ingest), flush_hwm (lifetime peak after the flush) and
# rss_after (resident after the flush), in MiB. Needs ../shared/tools/peerbench/loadgen
# built. Loopback only; every server is stopped by its PID.
set -euo pipefail
rounds=$1
shift
here=$(cd "$(dirname "$0")/../.." && pwd)
load=${LOADGEN:-$here/../shared/tools/peerbench/loadgen/target/release/peerbench-loadgen}
port=9473
start_ms=1796056221000
mib() { awk -v k="$1:" '$1 == k {printf "%.1f", $2 / 1024}' "/proc/$2/status"; }
for ((r = 1; r <= rounds; r++)); do
  for spec in "$@"; do
    label=${spec%%=*} bin=${spec#*=}
    dir=$(mktemp -d /tmp/gmc-flushpeak.XXXXXX)
    "$bin" serve --listen 127.0.0.1:$port --data-dir "$dir" >"$dir.log" 2>&1 &
    pid=$!
    for _ in $(seq 100); do curl -sf 127.0.0.1:$port/-/ready >/dev/null && break; sleep 0.1; done
    "$load" --url http://127.0.0.1:$port/api/v1/write --ticks 600 --start-ms $start_ms >/dev/null
    ingest=$(mib VmHWM $pid)
    curl -sf -XPOST 127.0.0.1:$port/api/v1/admin/flush >/dev/null
    flush=$(mib VmHWM $pid) rss=$(mib VmRSS $pid)
    python3 "$here/benches/query_mem.py" --targets "$port:$pid" \
      --end-ms $((start_ms + 600000)) --runs 1 >"$dir.queries"
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    echo "round $r $label: ingest_hwm=$ingest flush_hwm=$flush rss_after=$rss"
    sed 's/^/  /' "$dir.queries"
    rm -rf "$dir" "$dir.log" "$dir.queries"
  done
done
