#!/usr/bin/env python3
"""Per-request floor of small queries: a trivial endpoint, `1+1` and a one-series point
lookup against one or more running servers, each request on a new connection (as
peerbench's Python client makes them), alternating between servers request by request so
that machine noise hits all alike.

    benches/query_floor.py --ports 9490,9492 [--time 1796056821] [--rounds 500] [--keep-alive]

With --keep-alive each server gets one persistent connection instead: the difference
between a kind and "health" is then the server's own work for it, without the client's
connection setup (which is most of a point lookup's time in peerbench).

The health path is gmc's `/-/healthy`, or VictoriaMetrics' `/health` with --vm-port.
Prints the median, 25th percentile and minimum per request kind and server, in ms.
Loopback only; bounded by --rounds.
"""
import argparse
import http.client
import statistics
import time
import urllib.parse
import urllib.request


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ports", required=True, help="comma-separated gmc ports")
    ap.add_argument("--vm-port", type=int, help="a VictoriaMetrics port to include")
    ap.add_argument("--time", default="1796056821", help="evaluation time of the lookup")
    ap.add_argument("--rounds", type=int, default=500)
    ap.add_argument("--keep-alive", action="store_true",
                    help="one persistent connection per server instead of one per request")
    a = ap.parse_args()
    point = urllib.parse.urlencode(
        {"query": 'hft_pnl_usd{service="oms-0",pair="BTC-USDT"}', "time": a.time})
    targets = [(int(p), "/-/healthy") for p in a.ports.split(",")]
    if a.vm_port:
        targets.append((a.vm_port, "/health"))
    kinds = [("health", None), ("1+1", "/api/v1/query?query=1%2B1"),
             ("point", "/api/v1/query?" + point)]
    res = {}
    conns = {}
    for _ in range(a.rounds):
        for kind, path in kinds:
            for port, health in targets:
                url = f"http://127.0.0.1:{port}{path or health}"
                t0 = time.perf_counter()
                if a.keep_alive:
                    conn = conns.setdefault(port, http.client.HTTPConnection("127.0.0.1", port))
                    conn.request("GET", path or health)
                    conn.getresponse().read()
                else:
                    urllib.request.urlopen(url).read()
                res.setdefault((kind, port), []).append((time.perf_counter() - t0) * 1e3)
    for (kind, port), xs in res.items():
        xs.sort()
        print(f"{kind:7s} {port}: median {statistics.median(xs):.3f}  "
              f"p25 {xs[len(xs) // 4]:.3f}  min {xs[0]:.3f} ms")


if __name__ == "__main__":
    main()
