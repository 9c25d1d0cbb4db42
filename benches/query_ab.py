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
import statistics
import time
import urllib.request

from peerbench_queries import QUERIES, request_path


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
    for name, kind, q, step in QUERIES:
        if a.only and name not in a.only:
            continue
        url = request_path(kind, q, step, end, a.window_s)
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
