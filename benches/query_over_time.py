#!/usr/bin/env python3
"""One of peerbench's queries in a loop against one server, latency medians per 5-second
bucket: shows whether background work (maintenance, flushes) slows queries over time.

    benches/query_over_time.py PORT DATA_END_MS QUERY_NAME SECONDS

DATA_END_MS is the `data_end_ms` the peerbench load generator printed. A new connection
per request, as peerbench's client does. Loopback only; bounded by SECONDS.
"""
import sys
import time
import urllib.request

from peerbench_queries import QUERIES, request_path


def main():
    port, end_ms, name, secs = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
    _, kind, q, step = next(x for x in QUERIES if x[0] == name)
    url = f"http://127.0.0.1:{port}" + request_path(kind, q, step, end_ms / 1000.0, 3600)
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
