#!/usr/bin/env python3
"""The latency, throughput and wait workloads of the Rust benches, through
Python's concurrent.futures.ThreadPoolExecutor (the executor Concert builds
on), with one worker per core.

Prints one JSON object: {"group/id": median nanoseconds, ...}, with the same
group names as the criterion benches (latency, throughput, wait), so that
benches/report.py can set them beside the Rust figures. The throughput figure
is the time for all --tasks tasks.

Usage: python3 benches/python_peer.py [--tasks N]
  --tasks N   tasks in the throughput workload (default 1,000,000)
"""
import argparse
import concurrent.futures as cf
import json
import os
import statistics
import threading
import time


def median_ns(samples):
    return statistics.median(samples) * 1e9


def nothing():
    return None


def latency(executor, rounds=7, per_round=2000):
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(per_round):
            executor.submit(nothing).result()
        samples.append((time.perf_counter() - start) / per_round)
    return median_ns(samples)


def throughput(executor, tasks, rounds=3):
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        futures = [executor.submit(nothing) for _ in range(tasks)]
        for future in futures:
            future.result()
        samples.append(time.perf_counter() - start)
    return median_ns(samples)


def as_completed(executor, n=10_000, rounds=7):
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        futures = [executor.submit(lambda i=i: i) for i in range(n)]
        total = sum(f.result() for f in cf.as_completed(futures))
        samples.append(time.perf_counter() - start)
        assert total == n * (n - 1) // 2
    return median_ns(samples)


def wait_any(n=10_000, rounds=7):
    """10,000 tasks queued behind a gate on a one-thread executor; timed:
    open the gate, wait for the first to finish."""
    samples = []
    for _ in range(rounds):
        with cf.ThreadPoolExecutor(max_workers=1) as executor:
            gate = threading.Event()
            executor.submit(gate.wait)
            futures = [executor.submit(nothing) for _ in range(n)]
            start = time.perf_counter()
            gate.set()
            done, _ = cf.wait(futures, return_when=cf.FIRST_COMPLETED)
            samples.append(time.perf_counter() - start)
            assert done
    return median_ns(samples)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=1_000_000,
                        help="tasks in the throughput workload (a positive whole number)")
    args = parser.parse_args()
    if args.tasks < 1:
        parser.error(f"--tasks must be a positive whole number, got {args.tasks}")
    workers = os.cpu_count() or 2
    results = {}
    with cf.ThreadPoolExecutor(max_workers=workers) as executor:
        executor.submit(nothing).result()  # start the workers
        results["latency/python_concurrent_futures"] = latency(executor)
        results["throughput/python_concurrent_futures"] = throughput(executor, args.tasks)
        results["wait/as_completed/python_concurrent_futures"] = as_completed(executor)
    results["wait/wait_any/python_concurrent_futures"] = wait_any()
    results["_python_throughput_tasks"] = args.tasks
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
