#!/usr/bin/env bash
# Agent overhead, side by side with prometheus-node-exporter scraped every second.
#
#   crates/gmc-agent/tools/agent-overhead.sh [SECONDS] [OUT_DIR]
#
# Builds the agent (release, this crate only: examples/standalone.rs, the same loop as
# `gmc agent`), starts a center (target/debug/gmc, built if missing), the agent pushing to it
# at a 1 s interval, and node_exporter scraped by curl every 1 s. Samples CPU ticks and RSS
# of both from /proc every 5 s; writes OUT_DIR/raw.csv and OUT_DIR/summary.md.
set -euo pipefail
cd "$(dirname "$0")/../../.."
SECS=${1:-600}
OUT=${2:-$(mktemp -d /tmp/agent-overhead.XXXXXX)}
mkdir -p "$OUT"
command -v prometheus-node-exporter >/dev/null || { echo "install prometheus-node-exporter" >&2; exit 1; }
cargo build -q --release -p gmc-agent --example standalone
[ -x target/debug/gmc ] || cargo build -q -p gmc
AGENT_BIN=target/release/examples/standalone
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
CP=$(free_port); NP=$(free_port)
WORK=$(mktemp -d /tmp/agent-overhead-work.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT
GMC_LOG=warn target/debug/gmc serve --listen 127.0.0.1:$CP --data-dir "$WORK/data" 2>"$WORK/center.log" & pids+=($!)
for _ in $(seq 100); do curl -sf 127.0.0.1:$CP/-/ready >/dev/null && break; sleep 0.2; done
"$AGENT_BIN" --push http://127.0.0.1:$CP/api/v1/write --spool-dir "$WORK/spool" --interval-ms 1000 2>"$WORK/agent.log" & APID=$!; pids+=($APID)
prometheus-node-exporter --web.listen-address=127.0.0.1:$NP 2>"$WORK/ne.log" & NPID=$!; pids+=($NPID)
( while sleep 1; do curl -s -o /dev/null 127.0.0.1:$NP/metrics; done ) & pids+=($!)
sleep 3
TCK=$(getconf CLK_TCK)
ticks() { awk '{ s=$0; sub(/.*\) /, "", s); split(s, f, " "); print f[12] + f[13] }' /proc/$1/stat; }
rss_kib() { awk '/^VmRSS:/ { print $2 }' /proc/$1/status; }
echo "elapsed_s,agent_ticks,agent_rss_kib,ne_ticks,ne_rss_kib" > "$OUT/raw.csv"
A0=$(ticks $APID); N0=$(ticks $NPID); T0=$(date +%s.%N)
while :; do
  NOW=$(date +%s.%N); EL=$(echo "$NOW - $T0" | bc)
  echo "$EL,$(ticks $APID),$(rss_kib $APID),$(ticks $NPID),$(rss_kib $NPID)" >> "$OUT/raw.csv"
  [ "$(echo "$EL >= $SECS" | bc)" = 1 ] && break
  sleep 5
done
A1=$(ticks $APID); N1=$(ticks $NPID); T1=$(date +%s.%N)
python3 - "$OUT" "$A0" "$A1" "$N0" "$N1" "$T0" "$T1" "$TCK" <<'PY'
import csv, sys
out, a0, a1, n0, n1, t0, t1, tck = sys.argv[1], *map(float, sys.argv[2:])
dur = t1 - t0
rows = list(csv.DictReader(open(f"{out}/raw.csv")))
a_rss = [int(r["agent_rss_kib"]) for r in rows]; n_rss = [int(r["ne_rss_kib"]) for r in rows]
a_cpu = (a1 - a0) / tck / dur * 100; n_cpu = (n1 - n0) / tck / dur * 100
text = f"""# agent overhead, {dur:.0f} s, 1 s interval
| | CPU % of one core | RSS max MiB | RSS mean MiB |
|---|---|---|---|
| gmc agent (push, spool fsync always) | {a_cpu:.3f} | {max(a_rss)/1024:.1f} | {sum(a_rss)/len(a_rss)/1024:.1f} |
| prometheus-node-exporter (scraped every 1 s) | {n_cpu:.3f} | {max(n_rss)/1024:.1f} | {sum(n_rss)/len(n_rss)/1024:.1f} |
| ratio agent / node_exporter | {a_cpu / n_cpu if n_cpu else float('nan'):.3f} | {max(a_rss)/max(n_rss):.3f} | |
"""
open(f"{out}/summary.md", "w").write(text)
print(text)
PY
echo "raw data: $OUT/raw.csv"
