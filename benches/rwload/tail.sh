#!/usr/bin/env bash
# Where a remote_write latency tail comes from: start one gmc build on a fresh data dir
# (optionally with a TOML config, e.g. `[storage] sync = "none"`), create the series with
# a 2 s warm-up, then send 10k-sample requests at RATE samples/s for DUR seconds while
# every server thread's CPU is sampled each 50 ms. Prints the latency summary, the
# slowest requests, the WAL fsync histogram, the mean time per write step (from
# gmc_ingest_stage_* and gmc_tsdb_append_phase_*, warm-up included) and, for each slow
# request, what the server's threads did in the 400 ms before it.
#
#   benches/rwload/tail.sh BIN RATE DUR [CONFIG]
#   e.g. benches/rwload/tail.sh target/release/gmc 700000 12
#
# Loopback only; the server is stopped by its PID; the run is bounded by DUR.
set -euo pipefail
bin=$1 rate=$2 dur=$3 cfg=${4:-}
here=$(cd "$(dirname "$0")" && pwd)
load=$here/target/release/gmc-rwload
(cd "$here" && cargo build --release -q)
port=9473
dir=$(mktemp -d /tmp/gmc-tail.XXXXXX)
args=(serve --listen 127.0.0.1:$port --data-dir "$dir")
[ -n "$cfg" ] && args+=(--config "$cfg")
"$bin" "${args[@]}" >"$dir.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -rf "$dir" "$dir.log" "$dir.slow" "$dir.threads"' EXIT
for _ in $(seq 100); do curl -sf 127.0.0.1:$port/-/ready >/dev/null && break; sleep 0.1; done
"$load" --addr 127.0.0.1:$port --samples 10000 --conc 4 --rate 200000 --duration-s 2 --start-offset-s 7200 >/dev/null
python3 - "$pid" "$((dur + 1))" "$dir.threads" <<'PY' &
import os, sys, time
pid, dur, out = sys.argv[1], float(sys.argv[2]), open(sys.argv[3], "w")
end = time.time() + dur
while time.time() < end:
    row = []
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            s = open(f"/proc/{pid}/task/{tid}/stat").read()
        except OSError:
            continue
        comm = s[s.index("(") + 1:s.rindex(")")]
        f = s[s.rindex(")") + 2:].split()
        row.append(f"{comm}:{tid}={int(f[11]) + int(f[12])}")
    out.write(f"{time.time():.3f} " + " ".join(row) + "\n")
    out.flush()
    time.sleep(0.05)
PY
sampler=$!
start=$(date +%s.%N)
"$load" --addr 127.0.0.1:$port --samples 10000 --conc 4 --rate "$rate" --duration-s "$dur" --slow 12 2>"$dir.slow"
wait $sampler
cat "$dir.slow"
curl -s 127.0.0.1:$port/metrics | grep -E '^gmc_tsdb_wal_fsync_duration_seconds_(bucket\{le="(0.001|0.01|0.1|1)"\}|count)' || true
# Mean time per write step (server stages, then the store's append phases).
curl -s 127.0.0.1:$port/metrics | python3 -c '
import re, sys
acc = {}
for line in sys.stdin:
    m = re.match(r"gmc_(ingest_stage|tsdb_append_phase)_duration_seconds_(sum|count)\{\w+=\"(\w+)\"\} (\S+)", line)
    if m:
        acc.setdefault((m[1], m[3]), {})[m[2]] = float(m[4])
means = []
for (family, step), v in acc.items():
    if v.get("count"):
        ms = v.get("sum", 0.0) / v["count"] * 1e3
        means.append(f"{step}={ms:.2f}")
print("mean ms per step:", "  ".join(means))
' || true
python3 - "$start" "$dir.threads" "$dir.slow" <<'PY'
import collections, re, sys
start, threads, slow = float(sys.argv[1]), sys.argv[2], sys.argv[3]
at = [float(m.group(1)) for m in re.finditer(r"at +([0-9.]+) ms", open(slow).read())]
rows = []
for line in open(threads):
    p = line.split()
    rows.append((float(p[0]), {k: int(v) for k, v in (kv.rsplit("=", 1) for kv in p[1:])}))
print("CPU ticks (100/s) per 50 ms before slow requests, by thread name:")
for (t0, d0), (t1, d1) in zip(rows, rows[1:]):
    rel = (t1 - start) * 1000
    if any(s - 400 < rel < s + 50 for s in at):
        agg = collections.Counter()
        for k, v in d1.items():
            agg[k.split(":")[0]] += v - d0.get(k, v)
        print(f"{rel:8.0f} ms  " + " ".join(f"{k}={v}" for k, v in sorted(agg.items()) if v))
PY
