"""The peerbench query set (../shared/tools/peerbench/queries.py) and the request each query
makes, shared by the query benchmarks in this folder."""

import os
import sys
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "shared", "tools", "peerbench"))
import queries  # noqa: E402

QUERIES = queries.QUERIES


def request_path(kind, q, step, end_s, window_s):
    """Path and query string of one peerbench query ending at `end_s`; range queries span
    `window_s`. As peerbench: nocache=1 turns off VictoriaMetrics' rollup result cache,
    which would otherwise answer every repeat of a range query from memory."""
    if kind == "instant":
        path, p = "/api/v1/query", {"query": q, "time": f"{end_s:.3f}"}
    else:
        path = "/api/v1/query_range"
        p = {"query": q, "start": f"{end_s - window_s:.3f}", "end": f"{end_s:.3f}", "step": str(step)}
    p["nocache"] = "1"
    return path + "?" + urllib.parse.urlencode(p)
