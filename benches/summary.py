#!/usr/bin/env python3
"""Prints the medians of a criterion group and each one's ratio to the first
peer, from target/criterion/<group>/*/new/estimates.json.

Usage: python3 benches/summary.py GROUP [BASELINE_ID]
"""
import json
import pathlib
import sys

group = sys.argv[1]
root = pathlib.Path(__file__).resolve().parent.parent / "target" / "criterion" / group
rows = {}
for est in sorted(root.glob("*/new/estimates.json")):
    data = json.loads(est.read_text())
    bench = json.loads((est.parent / "benchmark.json").read_text())
    rows[bench["function_id"]] = data["median"]["point_estimate"]
if not rows:
    sys.exit(f"no criterion results under {root}: run `cargo bench --bench {group}` first")
baseline = sys.argv[2] if len(sys.argv) > 2 else next(iter(k for k in rows if "+" in k), next(iter(rows)))
print(f"| {group} | median time | time ratio to {baseline} (below 1: faster) |")
print("|---|---:|---:|")
for name, ns in rows.items():
    shown = f"{ns / 1000:.3f} µs" if ns >= 1000 else f"{ns:.1f} ns"
    print(f"| {name} | {shown} | {ns / rows[baseline]:.2f}× |")
