#!/usr/bin/env python3
"""Sequential unary gRPC calls from Python (grpcio), as an integrator's script makes them:
one call at a time, each sent when the previous answer arrived: GetBlock of block 1 (a
reader walking the chain) or GetChainStatus (a poller). Prints a table and a JSON line
with the mean and percentiles in milliseconds.

    scripts/bench-unary            (starts a one-member node and runs this against it)
    scripts/bench/unary_calls.py --url 127.0.0.1:50051 --calls 2000

It needs only grpcio: the calls are generic and their requests are written by hand
(GetBlockRequest { height: 1 } is the two bytes 08 01), so no generated stubs are
involved.
"""
import argparse
import json
import time

import grpc

METHODS = {
    "GetBlock": ("/tracechain.v1.Ledger/GetBlock", bytes([0x08, 0x01])),
    "GetChainStatus": ("/tracechain.v1.Ledger/GetChainStatus", b""),
}


def percentile(sorted_ms, p):
    return sorted_ms[round((len(sorted_ms) - 1) * p)]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", required=True, help="HOST:PORT of a node's gRPC API")
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--warmup", type=int, default=50)
    ap.add_argument("--method", choices=sorted(METHODS), default="GetBlock")
    a = ap.parse_args()
    if a.calls < 1:
        ap.error("--calls must be at least 1")
    with grpc.insecure_channel(a.url) as channel:
        path, request = METHODS[a.method]
        call = channel.unary_unary(path)
        for _ in range(a.warmup):
            call(request, timeout=10)
        latencies = []
        started = time.perf_counter()
        for _ in range(a.calls):
            t = time.perf_counter()
            answer = call(request, timeout=10)
            latencies.append((time.perf_counter() - t) * 1e3)
            if not answer:
                raise SystemExit(f"{a.method}: empty answer")
        elapsed = time.perf_counter() - started
    latencies.sort()
    mean = elapsed * 1e3 / a.calls
    p50, p99, top = (percentile(latencies, p) for p in (0.5, 0.99, 1.0))
    rate = a.calls / elapsed
    print("| client | method | calls | mean ms | p50 ms | p99 ms | max ms | calls/s |")
    print("|---|---|---|---|---|---|---|---|")
    print(f"| python grpcio {grpc.__version__} | {a.method} | {a.calls} | {mean:.3f} | {p50:.3f} | {p99:.3f} | {top:.3f} | {rate:.0f} |")
    print(json.dumps({
        "client": f"python grpcio {grpc.__version__}", "method": a.method,
        "calls": a.calls, "mean_ms": mean, "p50_ms": p50, "p99_ms": p99, "max_ms": top,
        "calls_per_second": rate,
    }))


if __name__ == "__main__":
    main()
