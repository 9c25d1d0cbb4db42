#!/usr/bin/env python3
"""A/B query latency: peerbench's 16 PromQL queries against one or more running servers,
requests alternating between them so machine noise hits all alike.

    benches/query_ab.py --ports 9500,9501 --end-ms DATA_END_MS [--runs 9] [--keep-alive] [QUERY ...]

DATA_END_MS is the `data_end_ms` the peerbench load generator printed for the data the
servers hold. Prints the median and minimum per query and server. Loopback only; bounded
by --runs. Needs ../shared/tools/peerbench (for its query set).

Each request opens a new connection, as peerbench's client does. With --keep-alive each
server gets one persistent connection instead, which leaves out the connection set-up
both servers pay alike and shows the servers' own time more closely.
"""
import argparse
import http.client
import os
import statistics
import sys
import time
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "shared", "tools", "peerbench"))
import queries  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ports", required=True, help="comma-separated loopback ports")
    ap.add_argument("--end-ms", type=int, required=True)
    ap.add_argument("--runs", type=int, default=9)
    ap.add_argument("--window-s", type=int, default=3600)
    ap.add_argument("--keep-alive", action="store_true",
                    help="one persistent connection per server instead of one per request")
    ap.add_argument("only", nargs="*")
    a = ap.parse_args()
    ports = a.ports.split(",")
    conns = {pt: http.client.HTTPConnection("127.0.0.1", int(pt), timeout=120) for pt in ports}

    def get(pt, url):
        if not a.keep_alive:
            urllib.request.urlopen(f"http://127.0.0.1:{pt}{url}", timeout=120).read()
            return
        conns[pt].request("GET", url)
        conns[pt].getresponse().read()
    end = a.end_ms / 1000.0
    for name, kind, q, step in queries.QUERIES:
        if a.only and name not in a.only:
            continue
        if kind == "instant":
            path, p = "/api/v1/query", {"query": q, "time": f"{end:.3f}"}
        else:
            path = "/api/v1/query_range"
            p = {"query": q, "start": f"{end - a.window_s:.3f}", "end": f"{end:.3f}", "step": str(step)}
        # As peerbench: nocache=1 turns off VictoriaMetrics' rollup result cache, which
        # would otherwise answer every repeat of a range query from memory.
        p["nocache"] = "1"
        url = path + "?" + urllib.parse.urlencode(p)
        lat = {pt: [] for pt in ports}
        for pt in ports:  # one cold request each, not counted
            get(pt, url)
        for _ in range(a.runs):
            for pt in ports:
                t = time.perf_counter()
                get(pt, url)
                lat[pt].append(time.perf_counter() - t)
        cells = [f"{pt}: med {statistics.median(v) * 1000:8.2f} min {min(v) * 1000:8.2f}" for pt, v in lat.items()]
        print(f"{name:28s} " + "  ".join(cells), flush=True)


if __name__ == "__main__":
    main()
