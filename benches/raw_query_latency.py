#!/usr/bin/env python3
"""Latency of one HTTP GET per new connection with a raw socket (no HTTP library), against
one or more loopback servers, requests alternating between them. It leaves out most of the
client's own cost, which peerbench's urllib client adds alike to every server.

    benches/raw_query_latency.py PATH PORT[,PORT...] [ROUNDS]

PATH is sent as is (URL-encode the query). Prints median and minimum per port. Bounded by
ROUNDS (default 300); loopback only.
"""
import socket
import statistics
import sys
import time


def once(port, path):
    t = time.perf_counter()
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
    n = 0
    while True:
        b = s.recv(65536)
        if not b:
            break
        n += len(b)
    s.close()
    return time.perf_counter() - t, n


def main():
    path = sys.argv[1]
    ports = [int(p) for p in sys.argv[2].split(",")]
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 300
    res = {p: [] for p in ports}
    size = {}
    for _ in range(rounds):
        for p in ports:
            dt, n = once(p, path)
            res[p].append(dt)
            size[p] = n
    for p in ports:
        print(f"{p}: median {statistics.median(res[p]) * 1e3:.3f} ms, "
              f"min {min(res[p]) * 1e3:.3f} ms, {size[p]} bytes")


if __name__ == "__main__":
    main()
