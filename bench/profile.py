"""`python -m bench <scenario> --profile [PATH]`: the scenario under py-spy, and its top costs.

py-spy samples every process of the run (`--subprocesses`: the bench, the simulator processes,
the `calsync run` daemons) without stopping them (`--nonblocking`), and writes a speedscope file
(open it at speedscope.app or with `speedscope`); PATH.txt summarises it: per process, the
functions with the most samples on their own (self) and with their callees (total).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

TOP_SELF = 15
TOP_TOTAL = 30


def _where(frame: dict[str, Any]) -> str:
    path = str(frame.get("file", ""))
    if "site-packages/" in path:
        path = path.split("site-packages/")[1]
    else:
        path = re.sub(r".*/(calsync|bench)/", r"\1/", re.sub(r".*/lib/python3\.\d+/", "", path))
    return f"{frame.get('name', '?')} ({path}:{frame.get('line', '')})"


def summarise(speedscope: Path) -> str:
    """The top self and total costs per process of a py-spy speedscope file."""
    data = json.loads(speedscope.read_text())
    frames = data["shared"]["frames"]
    own: defaultdict[str, Counter[int]] = defaultdict(Counter)
    total: defaultdict[str, Counter[int]] = defaultdict(Counter)
    weight: Counter[str] = Counter()
    for profile in data["profiles"]:
        process = str(profile["name"]).split(" Thread ")[0]
        for stack, w in zip(profile["samples"], profile["weights"], strict=True):
            if not stack:
                continue
            weight[process] += w
            own[process][stack[-1]] += w
            for index in set(stack):
                total[process][index] += w
    lines = [f"py-spy profile {speedscope}: sampled seconds per process, top costs", ""]
    for process, seconds in weight.most_common():
        if seconds < 1:
            continue
        lines.append(f"== {process}: {seconds:.1f} s sampled")
        for title, counter, top in (("self", own, TOP_SELF), ("total", total, TOP_TOTAL)):
            lines.append(f"  top {title}:")
            for index, w in counter[process].most_common(top):
                lines.append(f"    {100 * w / seconds:5.1f}%  {_where(frames[index])}")
        lines.append("")
    return "\n".join(lines)


def profile_command(scenario: str, quick: bool, path: str) -> int:
    """Run `python -m bench scenario [--quick]` under py-spy; write PATH and PATH.txt."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(spy).exists():
        sys.stderr.write("--profile needs py-spy: pip install py-spy (the dev extra has it)\n")
        return 2
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = Path(path or f"bench-profile-{scenario}-{stamp}.speedscope.json").resolve()
    command = [sys.executable, "-m", "bench", scenario, *(["--quick"] if quick else [])]
    code = subprocess.call(
        [spy, "record", "--subprocesses", "--nonblocking", "--rate", "50",
         "--format", "speedscope", "--output", str(out), "--", *command],
    )  # fmt: skip
    if not out.exists():
        sys.stderr.write(f"py-spy wrote no profile (exit status {code})\n")
        return code or 1
    summary = out.with_name(out.name + ".txt")
    summary.write_text(summarise(out))
    print(f"profile: {out} (speedscope format)\nsummary: {summary}")
    return code
