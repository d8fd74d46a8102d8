"""Run calsync's benchmark scenarios in one process and print their figures and targets.

Usage: python -m bench all|<scenario> [--quick]

Prints one JSON object per scenario (as each finishes), then a table of every figure, and last
one `TARGET <name> PASS|FAIL <value> <threshold>` line per target (DESIGN.md "Benchmarks"; a
target passes when value <= threshold). Exit status 1 when a target fails or a scenario errors.
`scale` (10,000 mailboxes: too long for the --quick budget next to the others), `sim_throughput`
and `soak` are not part of `all`; `python -m bench sim_throughput|soak [args]` runs their own
command line.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any

from calsync import logs

Options = dict[str, Any]

# scenario -> (module, options with --quick, options in full); the quick options keep the whole
# `all --quick` run under 10 minutes on 2 cores.
SCENARIOS: dict[str, tuple[str, Options, Options]] = {
    "config_validation": ("bench.config_validation", {"mailboxes": 10_000}, {}),
    "sync_requests": (
        "bench.sync_requests",
        {"mailboxes": 20, "events": 100},
        {"mailboxes": 100, "events": 200},
    ),
    "streaming_latency": ("bench.streaming_latency", {"edits": 50, "mailboxes": 50}, {}),
    "edit_latency": ("bench.edit_latency", {"edits": 50, "off_edits": 5}, {}),
    "idle_cost": (
        "bench.idle_cost",
        {"mailboxes": 200, "minutes": 1.5, "poll": 60, "settle_timeout": 240},
        {},
    ),
    "scale": ("bench.scale", {"mailboxes": 10_000, "idle_seconds": 30}, {}),
}
# too long for the --quick budget together with the others: run on its own
NOT_IN_ALL = frozenset({"scale"})
# scripts with their own command line only (not in `all`)
STANDALONE = ("sim_throughput", "soak")
# only these target names are printed as TARGET lines (DESIGN.md); others stay in the table
DESIGN_TARGETS = frozenset(
    {
        "initial_requests_ratio",
        "incremental_requests_ratio",
        "idle_requests_per_mailbox_hour",
        "edit_latency_p95_s",
        "baseline_request_ratio",
        "scale_peak_rss_mib",
    }
)

Target = tuple[str, float, float]


def _run_streaming_latency(module: Any, options: Options) -> dict[str, Any]:
    """streaming_latency.run takes a Namespace and returns no targets: adapt it here."""
    args = argparse.Namespace(edits=200, mailboxes=100, limit=50, workers=8, debounce_ms=250)
    vars(args).update(options)
    args.workers = max(1, min(args.workers, args.mailboxes))
    result: dict[str, Any] = {"scenario": "streaming_latency", **module.run(args)}
    # the notification half of edit_latency_p95_s: a figure, not a DESIGN.md target of its own
    p95 = result["p95_s"]
    result["targets"] = [("notification_p95_s", math.inf if p95 is None else p95, module.TARGET_S)]
    return result


def run_scenario(name: str, quick: bool) -> dict[str, Any]:
    module_name, quick_options, full_options = SCENARIOS[name]
    module = importlib.import_module(module_name)
    options = quick_options if quick else full_options
    if name == "streaming_latency":
        return _run_streaming_latency(module, options)
    runner: Callable[..., dict[str, Any]] = module.run
    return runner(**options)


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


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in STANDALONE:
        module = importlib.import_module(f"bench.{argv[0]}")
        sys.argv = [f"bench/{argv[0]}.py", *argv[1:]]
        return int(module.main())
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("scenario", choices=["all", *SCENARIOS, *STANDALONE])
    parser.add_argument("--quick", action="store_true", help="the under-10-minutes sizes")
    args = parser.parse_args(argv)
    logs.configure(format="json", level="warning")  # stderr; stdout is the report
    names = (
        [n for n in SCENARIOS if n not in NOT_IN_ALL] if args.scenario == "all" else [args.scenario]
    )
    started = time.perf_counter()
    results: list[dict[str, Any]] = []
    targets: list[Target] = []
    failed = False
    for name in names:
        scenario_start = time.perf_counter()
        try:
            result = run_scenario(name, args.quick)
        except Exception as error:  # a broken scenario must not hide the others' figures
            traceback.print_exc()
            result = {"scenario": name, "error": f"{type(error).__name__}: {error}"}
            failed = True
        result["wall_s"] = round(time.perf_counter() - scenario_start, 1)
        own = [(n, float(v), float(t)) for n, v, t in result.pop("targets", [])]
        result["targets"] = {n: {"value": round(v, 4), "threshold": t} for n, v, t in own}
        targets += own
        print(json.dumps(result), flush=True)
        results.append(result)
    print()
    print(table(results))
    print(f"\ntotal wall time {time.perf_counter() - started:.1f} s")
    for name, value, threshold in targets:
        if name not in DESIGN_TARGETS:
            continue
        verdict = "PASS" if value <= threshold else "FAIL"
        failed = failed or verdict == "FAIL"
        print(f"TARGET {name} {verdict} {value:.4g} {threshold:g}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
