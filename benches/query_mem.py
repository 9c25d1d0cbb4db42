#!/usr/bin/env python3
"""Peak memory per query: peerbench's 16 PromQL queries against running servers, one at a
time, reading each server's peak RSS (VmHWM) after resetting it before every query.

    benches/query_mem.py --targets 9500:PID,9501:PID --end-ms DATA_END_MS [--runs 3] [QUERY ...]

Prints, per query and server, the RSS before the query and the largest rise of the peak
over `--runs` runs (MiB). Resetting VmHWM writes `5` to /proc/PID/clear_refs, so the
servers must be processes of this user. Loopback only; bounded by --runs. Needs
../shared/tools/peerbench (for its query set).
"""
import argparse
import os
import sys
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "shared", "tools", "peerbench"))
import queries  # noqa: E402


def status_kib(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise KeyError(key)


def run(port, kind, promql, step, end_ms, window_s):
    base = f"http://127.0.0.1:{port}"
    if kind == "instant":
        q = {"query": promql, "time": f"{end_ms / 1000:.3f}"}
        url = f"{base}/api/v1/query?" + urllib.parse.urlencode(q)
    else:
        q = {
            "query": promql,
            "start": f"{end_ms / 1000 - window_s:.3f}",
            "end": f"{end_ms / 1000:.3f}",
            "step": str(step),
        }
        url = f"{base}/api/v1/query_range?" + urllib.parse.urlencode(q)
    with urllib.request.urlopen(url, timeout=120) as r:
        r.read()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--targets", required=True, help="comma-separated PORT:PID pairs")
    ap.add_argument("--end-ms", type=int, required=True)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--window-s", type=int, default=3600)
    ap.add_argument("only", nargs="*")
    a = ap.parse_args()
    targets = [tuple(int(x) for x in t.split(":")) for t in a.targets.split(",")]
    print(f"{'query':28}" + "".join(f"{f'{p} base':>11}{f'{p} +peak':>11}" for p, _ in targets))
    for name, kind, promql, step in queries.QUERIES:
        if a.only and name not in a.only:
            continue
        row = f"{name:28}"
        for port, pid in targets:
            rise = 0
            base = 0
            for _ in range(max(1, a.runs)):
                with open(f"/proc/{pid}/clear_refs", "w") as f:
                    f.write("5")
                base = status_kib(pid, "VmRSS")
                run(port, kind, promql, step, a.end_ms, a.window_s)
                rise = max(rise, status_kib(pid, "VmHWM") - base)
            row += f"{base / 1024:11.1f}{rise / 1024:11.1f}"
        print(row, flush=True)


if __name__ == "__main__":
    main()
