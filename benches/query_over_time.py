#!/usr/bin/env python3
"""One of peerbench's queries in a loop against one server, latency medians per 5-second
bucket: shows whether background work (maintenance, flushes) slows queries over time.

    benches/query_over_time.py PORT DATA_END_MS QUERY_NAME SECONDS

DATA_END_MS is the `data_end_ms` the peerbench load generator printed. A new connection
per request, as peerbench's client does. Loopback only; bounded by SECONDS.
"""
import os
import sys
import time
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "shared", "tools", "peerbench"))
import queries  # noqa: E402


def main():
    port, end_ms, name, secs = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
    _, kind, q, step = next(x for x in queries.QUERIES if x[0] == name)
    end = end_ms / 1000.0
    if kind == "instant":
        path, p = "/api/v1/query", {"query": q, "time": f"{end:.3f}"}
    else:
        path = "/api/v1/query_range"
        p = {"query": q, "start": f"{end - 3600:.3f}", "end": f"{end:.3f}", "step": str(step)}
    p["nocache"] = "1"
    url = f"http://127.0.0.1:{port}{path}?" + urllib.parse.urlencode(p)
    t0 = time.time()
    buckets = {}
    while time.time() - t0 < secs:
        t = time.perf_counter()
        urllib.request.urlopen(url, timeout=60).read()
        dt = (time.perf_counter() - t) * 1000
        buckets.setdefault(int(time.time() - t0) // 5 * 5, []).append(dt)
    for s in sorted(buckets):
        v = sorted(buckets[s])
        print(f"{s:4d}s n={len(v)} median={v[len(v) // 2]:.2f} ms max={v[-1]:.2f} ms")


if __name__ == "__main__":
    main()
