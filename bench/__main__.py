"""Run calsync's benchmark scenarios and print their figures and targets.

Usage: python -m bench all|<scenario> [--quick] [--profile [PATH]]

Prints one JSON object per scenario (as each finishes), then a table of every figure, and last
one `TARGET <name> PASS|FAIL <value> <threshold>` line per target (DESIGN.md "Benchmarks"; a
target passes when value <= threshold). Exit status 1 when a target fails or a scenario errors.
Scenarios (issue 9): config_validation, initial_sync, incremental, latency, scale, idle,
baseline, graph_requests. In `all`, config_validation, initial_sync, incremental and latency
(the scenarios whose targets are times or that time calsync) run first, one after the other;
then scale, idle, baseline and graph_requests run side by side: the scale daemon is one process
bound to one core by its GIL on a 2-core machine, and the others count requests or wait on
intervals. `--profile` runs the command under py-spy (every process: the bench, the
simulators, the daemons) and writes a speedscope profile and a text summary of the top costs.
`sim_throughput`, `streaming_latency` and `soak` run on their own with their own command line.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import os
import platform
import sys
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from calsync import logs

Options = dict[str, Any]

# scenario -> (module[:function], options with --quick, options in full); the quick options keep
# the whole `all --quick` run under 10 minutes on 2 cores and the DESIGN.md minimums.
SCENARIOS: dict[str, tuple[str, Options, Options]] = {
    "config_validation": ("bench.config_validation", {"mailboxes": 10_000}, {}),
    "initial_sync": (
        "bench.sync_requests:initial_sync",
        {"mailboxes": 20, "events": 100},
        {"mailboxes": 100, "events": 200},
    ),
    "incremental": (
        "bench.sync_requests:incremental",
        {"mailboxes": 20, "events": 100},
        {"mailboxes": 100, "events": 200},
    ),
    "latency": (
        "bench.edit_latency",
        {"edits": 200, "off_edits": 40, "workers": 20},
        {"edits": 200, "off_edits": 200, "workers": 10},
    ),
    "scale": (
        "bench.scale",
        {"mailboxes": 10_000, "idle_seconds": 20, "workers": 4},
        {"mailboxes": 10_000, "idle_seconds": 60, "workers": 4},
    ),
    "idle": (
        "bench.idle_cost",
        {"mailboxes": 200, "minutes": 1.5, "poll": 10, "off_poll": 45},
        {"mailboxes": 200, "minutes": 10, "poll": 300, "off_poll": 60},
    ),
    "baseline": ("bench.baseline", {"mailboxes": 1000, "seconds": 90}, {"seconds": 600}),
    "graph_requests": ("bench.graph_requests", {"events": 100, "edits": 5}, {"edits": 50}),
}
# in `all`: the others run one after the other, then these side by side (see the docstring)
CONCURRENT = frozenset({"scale", "idle", "baseline", "graph_requests"})
# scripts with their own command line only (not in `all`)
STANDALONE = ("sim_throughput", "streaming_latency", "soak")
# only these target names are printed as TARGET lines (DESIGN.md); others stay in the table
DESIGN_TARGETS = (
    "initial_requests_ratio",
    "incremental_requests_ratio",
    "idle_requests_per_mailbox_hour",
    "edit_latency_p95_s",
    "baseline_request_ratio",
    "scale_peak_rss_mib",
)

Target = tuple[str, float, float]

# figures that depend on the machine's speed: each is also given divided by the calibration
# (milliseconds of a fixed CPU-bound Python workload, measured at the start of the same run)
SPEED_FIGURES: dict[str, tuple[str, ...]] = {
    "config_validation": ("seconds_best",),
    "initial_sync": ("seconds", "calsync_cpu_s"),
    "incremental": ("seconds", "calsync_cpu_s"),
    "latency": ("streaming_on.exchange_to_store.p95_s", "streaming_on.store_to_exchange.p95_s"),
    "scale": ("first_full_sync_s", "daemon_cpu_ms_per_request"),
}


def calibrate() -> float:
    """Best of 5 runs of a fixed workload (JSON round trips and a pure-Python loop), in ms."""
    document = {f"key{i}": [i, str(i), {"nested": i * 0.5}] for i in range(1000)}
    best = math.inf
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(20):
            json.loads(json.dumps(document))
        sum(i * i % 7 for i in range(200_000))
        best = min(best, time.perf_counter() - started)
    return round(best * 1000, 2)


def machine(calibration_ms: float) -> dict[str, Any]:
    cpu = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")), platform.processor(),
    )  # fmt: skip
    return {
        "scenario": "machine",
        "cpus": os.cpu_count(),
        "cpu_model": cpu,
        "python": platform.python_version(),
        "calibration_ms": calibration_ms,
        # other work on the machine slows every figure: the 1-minute load average now
        "load_average": round(os.getloadavg()[0], 2),
    }


def _add_ratios(result: dict[str, Any], calibration_ms: float) -> None:
    for dotted in SPEED_FIGURES.get(str(result.get("scenario")), ()):
        *parents, leaf = dotted.split(".")
        node: Any = result
        for key in parents:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, dict) and isinstance(node.get(leaf), int | float):
            node[f"{leaf}_per_calibration"] = round(node[leaf] / (calibration_ms / 1000), 2)


def run_scenario(name: str, quick: bool) -> dict[str, Any]:
    target, quick_options, full_options = SCENARIOS[name]
    module_name, _, function = target.partition(":")
    module = importlib.import_module(module_name)
    runner: Callable[..., dict[str, Any]] = getattr(module, function or "run")
    result = runner(**(quick_options if quick else full_options))
    result["scenario"] = name
    return result


def flatten(prefix: str, value: Any) -> list[tuple[str, Any]]:
    if isinstance(value, dict):
        rows: list[tuple[str, Any]] = []
        for key, item in value.items():
            rows += flatten(f"{prefix}.{key}" if prefix else str(key), item)
        return rows
    if isinstance(value, list | tuple):
        return [(prefix, json.dumps(value))]
    return [(prefix, value)]


def table(results: list[dict[str, Any]]) -> str:
    rows = [("scenario", "figure", "value")]
    for result in results:
        scenario = str(result.get("scenario", "?"))
        for key, value in flatten("", {k: v for k, v in result.items() if k != "scenario"}):
            rows.append((scenario, key, str(value)))
    widths = [max(len(row[i]) for row in rows) for i in range(2)]
    return "\n".join(f"{a:<{widths[0]}}  {b:<{widths[1]}}  {c}" for a, b, c in rows)


class Runner:
    """Runs scenarios (some in the background), prints each result as it finishes."""

    def __init__(self, quick: bool, calibration_ms: float) -> None:
        self.quick = quick
        self.calibration_ms = calibration_ms
        self.results: dict[str, dict[str, Any]] = {}
        self.targets: list[Target] = []
        self.failed = False
        self._lock = threading.Lock()

    def run(self, name: str) -> None:
        started = time.perf_counter()
        try:
            result = run_scenario(name, self.quick)
        except Exception as error:  # a broken scenario must not hide the others' figures
            traceback.print_exc()
            result = {"scenario": name, "error": f"{type(error).__name__}: {error}"}
            self.failed = True
        result["wall_s"] = round(time.perf_counter() - started, 1)
        _add_ratios(result, self.calibration_ms)
        own = [(n, float(v), float(t)) for n, v, t in result.pop("targets", [])]
        result["targets"] = {n: {"value": round(v, 4), "threshold": t} for n, v, t in own}
        with self._lock:
            self.targets += own
            self.results[name] = result
            print(json.dumps(result), flush=True)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in STANDALONE:
        module = importlib.import_module(f"bench.{argv[0]}")
        sys.argv = [f"bench/{argv[0]}.py", *argv[1:]]
        return int(module.main())
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("scenario", choices=["all", *SCENARIOS, *STANDALONE])
    parser.add_argument("--quick", action="store_true", help="the under-10-minutes sizes")
    parser.add_argument(
        "--profile", nargs="?", const="", metavar="PATH",
        help="profile the run with py-spy: a speedscope file (PATH) and PATH.txt, the top costs",
    )  # fmt: skip
    args = parser.parse_args(argv)
    if args.profile is not None:
        from bench.profile import profile_command

        return profile_command(args.scenario, args.quick, args.profile)
    logs.configure(format="json", level="warning")  # stderr; stdout is the report
    names = list(SCENARIOS) if args.scenario == "all" else [args.scenario]
    started = time.perf_counter()
    runner = Runner(args.quick, calibrate())
    print(json.dumps(machine(runner.calibration_ms)), flush=True)
    threads = []
    last = [n for n in names if len(names) > 1 and n in CONCURRENT]
    for name in names:
        if name not in last:
            runner.run(name)
    for name in last:
        threads.append(threading.Thread(target=runner.run, args=(name,), name=f"bench-{name}"))
        threads[-1].start()
    for thread in threads:
        thread.join()
    results = [machine(runner.calibration_ms)]  # load_average: at the end
    results += [runner.results[n] for n in names if n in runner.results]
    print()
    print(table(results))
    print(f"\ntotal wall time {time.perf_counter() - started:.1f} s")
    failed = runner.failed
    printed = [t for t in runner.targets if t[0] in DESIGN_TARGETS]
    for name, value, threshold in sorted(printed, key=lambda t: DESIGN_TARGETS.index(t[0])):
        verdict = "PASS" if value <= threshold else "FAIL"
        failed = failed or verdict == "FAIL"
        print(f"TARGET {name} {verdict} {value:.4g} {threshold:g}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
