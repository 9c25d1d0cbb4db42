# Hand encoder for the remote write 2.0 golden input (protobuf + literal-only snappy),
# written from types.proto, independent of gmc's prost-based encoder.
import struct, sys
def varint(n):
    out = bytearray()
    n &= (1 << 64) - 1
    while True:
        b = n & 0x7f; n >>= 7
        if n: out.append(b | 0x80)
        else: out.append(b); return bytes(out)
def key(f, wt): return varint(f << 3 | wt)
def ld(f, b): return key(f, 2) + varint(len(b)) + b
def vi(f, n): return key(f, 0) + varint(n)
def dbl(f, x): return key(f, 1) + struct.pack('<d', x)
def zz(n): return (n << 1) ^ (n >> 63)
def packed(f, ns): return ld(f, b''.join(varint(n) for n in ns))
def sample(v, ts): return dbl(1, v) + vi(2, ts)
syms = ["", "__name__", "orders_sent_total", "service", "oms", "venue", "XNAS",
        "Orders sent to venues.", "rpc_latency_seconds", "risk", "trace_id", "abc", "seconds"]
req = b''.join(ld(4, s.encode()) for s in syms)
s1 = (packed(1, [1, 2, 3, 4, 5, 6]) + ld(2, sample(1.0, 1700000000000)) + ld(2, sample(2.0, 1700000001000))
      + ld(4, packed(1, [10, 11]) + dbl(2, 1.0) + vi(3, 1700000000000))
      + ld(5, vi(1, 1) + vi(3, 7) + vi(4, 0)) + vi(6, 1699999990000))
hist = (vi(1, 6) + dbl(3, 0.3) + vi(4, zz(-53)) + ld(11, vi(1, 0) + vi(2, 3))
        + ld(12, b''.join(varint(zz(d)) for d in [1, 2, -1]))
        + ld(16, struct.pack('<dd', 0.005, 0.01)) + vi(15, 1700000000000))
s2 = packed(1, [1, 8, 3, 9]) + ld(3, hist) + ld(5, vi(1, 3) + vi(3, 0) + vi(4, 12))
s3 = packed(1, [1, 2, 3, 99]) + ld(2, sample(5.0, 1700000000000))
s4 = packed(1, [3, 4, 1, 2]) + ld(2, sample(3.0, 1700000002000))
s5 = packed(1, [1, 2])
req += b''.join(ld(5, s) for s in [s1, s2, s3, s4, s5])
def snappy_literal(b):
    out = bytearray(varint(len(b)))
    for i in range(0, len(b), 60):
        chunk = b[i:i+60]
        out.append((len(chunk) - 1) << 2)
        out += chunk
    return bytes(out)
sys.stdout.buffer.write(snappy_literal(req))
