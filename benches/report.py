#!/usr/bin/env python3
"""Runs every bench and writes the measured part of docs/performance.md
(between its `<!-- report -->` markers) and the plots docs/latency.svg and
docs/throughput.svg.

Usage: python3 benches/report.py [--no-run] [--tasks N] [--interrupt-runs N]
  --no-run             use the criterion results already under target/
                       (footprint, interrupt and Python are always re-run)
  --tasks N            tasks in the throughput workloads (default 1,000,000)
  --interrupt-runs N   child processes in the Ctrl-C bench (default 200)

Everything is measured in this one run, so the ratios compare systems under
the same conditions; absolute times drift between runs on shared machines.
"""
import argparse
import json
import math
import os
import pathlib
import platform
import re
import shutil
import statistics
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
CRITERION = ROOT / "target" / "criterion"
DOC = ROOT / "docs" / "performance.md"
START, END = "<!-- report:start -->", "<!-- report:end -->"
CRITERION_BENCHES = ["latency", "throughput", "instance", "wait", "speedup", "nested"]


def run(cmd, env=None):
    print("+", " ".join(cmd), file=sys.stderr, flush=True)
    done = subprocess.run(cmd, cwd=ROOT, env={**os.environ, **(env or {})},
                          stdout=subprocess.PIPE, text=True)
    if done.returncode != 0:
        sys.exit(f"`{' '.join(cmd)}` failed with exit code {done.returncode}")
    return done.stdout


def medians(group):
    """{function_id: median ns} of one criterion group."""
    rows = {}
    for est in sorted((CRITERION / group).rglob("new/estimates.json")):
        bench = json.loads((est.parent / "benchmark.json").read_text())
        if bench["group_id"] == group:
            rows[bench["function_id"]] = json.loads(est.read_text())["median"]["point_estimate"]
    if not rows:
        sys.exit(f"no criterion results for `{group}` under {CRITERION}: "
                 f"run without --no-run, or `cargo bench --bench {group}` first")
    return rows


def shown(ns):
    for unit, scale in (("s", 1e9), ("ms", 1e6), ("µs", 1e3)):
        if ns >= scale:
            return f"{ns / scale:.3g} {unit}" if ns / scale < 100 else f"{ns / scale:.0f} {unit}"
    return f"{ns:.3g} ns"


def machine():
    cpu = "unknown CPU"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem = next(l for l in open("/proc/meminfo") if l.startswith("MemTotal"))
        mem = f"{int(mem.split()[1]) / 2**20:.0f} GiB"
    except OSError:
        mem = "unknown memory"
    rustc = subprocess.run(["rustc", "-V"], stdout=subprocess.PIPE, text=True).stdout.strip()
    return (f"{os.cpu_count()} cores ({cpu}), {mem}, {platform.system()} {platform.release()}, "
            f"{rustc}, Python {platform.python_version()}")


def table(title, rows, baseline, ratio_label, invert=False):
    """Markdown table of medians, fastest first, and each row's ratio to `baseline`."""
    out = [f"| {title} | median | {ratio_label} |", "|---|---:|---:|"]
    for name, ns in sorted(rows.items(), key=lambda row: row[1]):
        ratio = rows[baseline] / ns if invert else ns / rows[baseline]
        out.append(f"| {name} | {shown(ns)} | {ratio:.2f}× |")
    return "\n".join(out)


def inline_table(rows):
    """Each work size: the direct call, the same through an inline pool, and their ratio."""
    out = ["| work in the task | direct call | through an inline pool | ratio |", "|---|---:|---:|---:|"]
    for label in ("empty", "0.1us", "1us"):
        direct, inline = rows[f"direct_call/{label}"], rows[f"concertina_inline/{label}"]
        out.append(f"| {label.replace('us', ' µs')} | {shown(direct)} | {shown(inline)} | {inline / direct:.2f}× |")
    return "\n".join(out)


def bar_chart(path, title, rows, note):
    """A horizontal bar chart on a log scale, concertina's bars highlighted."""
    width, left, bar, gap, top = 760, 300, 22, 8, 40
    height = top + len(rows) * (bar + gap) + 40
    lo = 10 ** math.floor(math.log10(min(rows.values())))
    hi = 10 ** math.ceil(math.log10(max(rows.values())))
    span = math.log10(hi) - math.log10(lo)

    def x(ns):
        return left + (width - left - 20) * (math.log10(ns) - math.log10(lo)) / span

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'font-family="sans-serif" font-size="12">',
             f'<rect width="{width}" height="{height}" fill="white"/>',
             f'<text x="10" y="20" font-size="14" font-weight="bold">{title}</text>']
    decade = lo
    while decade <= hi:
        parts.append(f'<line x1="{x(decade):.1f}" y1="{top - 5}" x2="{x(decade):.1f}" '
                     f'y2="{height - 30}" stroke="#ddd"/>')
        parts.append(f'<text x="{x(decade):.1f}" y="{height - 15}" text-anchor="middle">'
                     f'{shown(decade)}</text>')
        decade *= 10
    for i, (name, ns) in enumerate(sorted(rows.items(), key=lambda r: r[1])):
        y = top + i * (bar + gap)
        colour = "#d9534f" if name.startswith("concertina") else "#5b8db8"
        parts.append(f'<text x="{left - 8}" y="{y + bar * 0.7:.1f}" text-anchor="end">{name}</text>')
        parts.append(f'<rect x="{left}" y="{y}" width="{max(x(ns) - left, 1):.1f}" height="{bar}" '
                     f'fill="{colour}"/>')
        parts.append(f'<text x="{x(ns) + 4:.1f}" y="{y + bar * 0.7:.1f}">{shown(ns)}</text>')
    parts.append(f'<text x="{width - 10}" y="{height - 2}" text-anchor="end" fill="#666">{note}</text>')
    parts.append("</svg>")
    path.write_text("\n".join(parts) + "\n")


def number(text, label):
    """The number in the markdown row of `text` whose first cell contains `label`."""
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) >= 2 and label in cells[0]:
            return float(cells[-1].rstrip("%"))
    sys.exit(f"the footprint bench printed no row for {label!r}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-run", action="store_true")
    parser.add_argument("--tasks", type=int, default=1_000_000)
    parser.add_argument("--interrupt-runs", type=int, default=200)
    args = parser.parse_args()
    for name in ("tasks", "interrupt_runs"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be a positive whole number")

    if not args.no_run:
        for bench in CRITERION_BENCHES:
            run(["cargo", "bench", "--bench", bench],
                env={"THROUGHPUT_TASKS": str(args.tasks)})
    footprint = run(["cargo", "bench", "--bench", "footprint"])
    interrupt = run(["cargo", "bench", "--bench", "interrupt"],
                    env={"INTERRUPT_RUNS": str(args.interrupt_runs)})
    python = {}
    if shutil.which("python3"):
        python = json.loads(run(["python3", "benches/python_peer.py", "--tasks", str(args.tasks)]))

    latency = medians("latency")
    throughput = medians("throughput")
    instance = medians("instance")
    wait = medians("wait")
    speedup = medians("speedup")
    inline = medians("inline")
    nested = medians("nested")
    depth = int(os.environ.get("NESTED_DEPTH", "1000"))
    per_level = {k: v / depth for k, v in nested.items()}
    if python:
        latency["python_concurrent_futures"] = python["latency/python_concurrent_futures"]
        throughput["python_concurrent_futures"] = python["throughput/python_concurrent_futures"]
        wait["as_completed/python_concurrent_futures"] = python["wait/as_completed/python_concurrent_futures"]
        wait["wait_any/python_concurrent_futures"] = python["wait/wait_any/python_concurrent_futures"]
    per_task = {k: v / args.tasks for k, v in throughput.items()}

    ours = latency["concertina_rayon"]
    checks = [
        ("latency ≤ 0.5× rayon+channel", ours / latency["rayon_spawn+bounded1"], "≤", 0.5),
        ("throughput ≥ 2.5× rayon+oneshot (rayon backend)", throughput["rayon_spawn+oneshot"] / throughput["concertina_rayon"], "≥", 2.5),
        ("throughput ≥ 2.5× rayon+oneshot (crossbeam backend)", throughput["rayon_spawn+oneshot"] / throughput["concertina_crossbeam"], "≥", 2.5),
        ("ordered calls on one instance ≥ 0.5× spawn throughput", instance["spawn"] / instance["one_instance_ordered"], "≥", 0.5),
        ("ordered calls over 1,000 instances ≥ 0.5× spawn throughput", instance["spawn"] / instance["1000_instances_ordered"], "≥", 0.5),
        ("heap bytes per pending Future<()> (rayon backend) ≤ 128", number(footprint, "(Rayon backend)"), "≤", 128),
        ("heap bytes per idle Instance<()> ≤ 256", number(footprint, "idle `Instance<()>`"), "≤", 256),
        ("idle rayon-backed pool, % of one core < 1", number(footprint, "concertina Rayon pool"), "<", 1.0),
        ("CPU-bound speed-up on all cores ≥ 1.8×", speedup["sequential"] / speedup["concertina"], "≥", 1.8),
    ]
    for label in ("empty", "0.1us", "1us"):
        checks.append((f"disabled-async mode ≤ 2× a direct call ({label} task)",
                       inline[f"concertina_inline/{label}"] / inline[f"direct_call/{label}"], "≤", 2.0))
    if python:
        checks.append(("latency ≥ 50× faster than concurrent.futures",
                       latency["python_concurrent_futures"] / ours, "≥", 50.0))
    ops = {"≤": float.__le__, "≥": float.__ge__, "<": float.__lt__}
    target_rows = ["| target | measured | met |", "|---|---:|:---:|"]
    for label, value, op, bound in checks:
        target_rows.append(f"| {label} | {value:.3g} | {'yes' if ops[op](float(value), float(bound)) else '**no**'} |")

    bar_chart(ROOT / "docs" / "latency.svg", "Submit one empty task and wait for it (median, log scale)",
              latency, "cargo bench --bench latency; python3 benches/python_peer.py")
    bar_chart(ROOT / "docs" / "throughput.svg",
              f"Time per task, {args.tasks:,} empty tasks submitted then waited (median, log scale)",
              per_task, "cargo bench --bench throughput; python3 benches/python_peer.py")

    body = f"""{START}
Measured by `python3 benches/report.py` on {machine()}.
Medians; every ratio compares figures of this one run.

### Targets

{chr(10).join(target_rows)}

### Latency: submit one empty task and wait for its result

![latency per system](latency.svg)

{table("latency", latency, "rayon_spawn+bounded1", "time ratio to rayon_spawn+bounded1")}

### Throughput: {args.tasks:,} empty tasks submitted, then all waited for

![time per task per system](throughput.svg)

{table("throughput (time per task)", per_task, "rayon_spawn+oneshot", "throughput ratio to rayon_spawn+oneshot", invert=True)}

### Ordered calls on instances: 10,000 calls submitted, then all waited for

{table("instance", instance, "spawn", "throughput ratio to spawn", invert=True)}

### Waiting on many: 10,000 futures

{table("as_completed", {k.split("/", 1)[1]: v for k, v in wait.items() if k.startswith("as_completed/")},
       "rayon_spawn+shared_channel", "time ratio to rayon_spawn+shared_channel")}

{table("wait_any", {k.split("/", 1)[1]: v for k, v in wait.items() if k.startswith("wait_any/")},
       "threadpool+select", "time ratio to threadpool+select")}

### CPU-bound speed-up: 64 items of about 1 ms each

{table("speedup", speedup, "sequential", "speed-up over sequential", invert=True)}

### Nested waits on one-thread pools: time per level, depth {depth:,}

{table("nested (time per level)", per_level, "rayon_join_chain", "time ratio to rayon_join_chain")}

### The disabled-async mode against a direct call

{inline_table(inline)}

### Footprint and idle CPU

{footprint.strip()}

### From Ctrl-C to the wait returning ({args.interrupt_runs} child processes)

{interrupt.strip()}
{END}"""
    text = DOC.read_text()
    if START in text and END in text:
        text = text[:text.index(START)] + body + text[text.index(END) + len(END):]
    else:
        text = text.rstrip() + "\n\n## Latest report\n\n" + body + "\n"
    DOC.write_text(text)
    print(f"wrote {DOC.relative_to(ROOT)}, docs/latency.svg and docs/throughput.svg", file=sys.stderr)


if __name__ == "__main__":
    main()
