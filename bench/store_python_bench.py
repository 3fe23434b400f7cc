#!/usr/bin/env python3
"""Latency of the object store from Python (the module `larder`, tools/python):
get (a zero-copy memoryview), release, get+numpy.frombuffer, and
create+seal of 1 KiB, each timed over batches of 1,000 operations; prints
the median and the 99th percentile of the per-batch means as JSON.

    PYTHONPATH=build/tools/python /usr/bin/python3 bench/store_python_bench.py [--batches N]
"""
import argparse
import json
import os
import statistics
import tempfile
import time

import larder

try:
    import numpy
except ImportError:
    numpy = None

BATCH = 1000


def timed(batches, operation):
    means = []
    for b in range(batches):
        start = time.perf_counter_ns()
        for i in range(BATCH):
            operation(b, i)
        means.append((time.perf_counter_ns() - start) / BATCH)
    means.sort()
    return {"median_ns": statistics.median(means), "p99_ns": means[min(len(means) - 1, int(len(means) * 0.99))]}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir="/dev/shm" if os.path.isdir("/dev/shm") else None) as d:
        s = larder.Store(os.path.join(d, "store.heap"), reserve=4 << 30)
        payload = b"x" * 1024
        for i in range(BATCH):
            s.create(i, 1024)[:] = payload
            s.seal(i)
        results = {}

        def get_release(b, i):
            s.get(i)
            s.release(i)

        results["get+release"] = timed(args.batches, get_release)
        if numpy is not None:
            def get_numpy_release(b, i):
                numpy.frombuffer(s.get(i), dtype=numpy.uint8)
                s.release(i)

            results["get+numpy+release"] = timed(args.batches, get_numpy_release)

        next_id = [BATCH]

        def create_seal_delete(b, i):
            key = next_id[0]
            next_id[0] += 1
            s.create(key, 1024)[:] = payload
            s.seal(key)
            s.delete(key)

        results["create+seal+delete 1 KiB"] = timed(max(1, args.batches // 4), create_seal_delete)
        s.close()
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
