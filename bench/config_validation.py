"""How long does validating a configuration with many mailboxes take?

Target (issue 2): 10,000 mailboxes validate in under 2 s on this machine.
Run: python -m bench config_validation [--mailboxes N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from calsync.config import load_config

THRESHOLD_S = 2.0


def write_config(folder: Path, mailboxes: int, tenants: int = 5) -> Path:
    lines = []
    for t in range(tenants):
        (folder / f"t{t}.secret").write_text("secret-value\n")
        lines += [
            "[[tenants]]",
            f'name = "tenant{t}"',
            f'tenant_id = "00000000-0000-0000-0000-{t:012d}"',
            'client_id = "11111111-2222-3333-4444-555555555555"',
            f'client_secret_file = "t{t}.secret"',
            "",
        ]
    for i in range(mailboxes):
        direction = ("pull", "push", "two-way")[i % 3]
        lines += [
            "[[mailboxes]]",
            f'address = "user{i:05d}@tenant{i % tenants}.example"',
            f'tenant = "tenant{i % tenants}"',
            f'direction = "{direction}"',
            "",
        ]
    path = folder / "calsync.toml"
    path.write_text("\n".join(lines))
    path.chmod(0o600)
    return path


def run(mailboxes: int = 10_000, repeats: int = 3) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        path = write_config(Path(tmp), mailboxes)
        timings = []
        for _ in range(repeats):
            start = time.perf_counter()
            config = load_config(path, environ={})
            timings.append(time.perf_counter() - start)
        assert len(config.mailboxes) == mailboxes
    best = min(timings)
    return {
        "scenario": "config_validation",
        "mailboxes": mailboxes,
        "seconds_best": round(best, 3),
        "seconds_median": round(statistics.median(timings), 3),
        "per_mailbox_us": round(best / mailboxes * 1e6, 1),
        "targets": [("config_validation_s", best, THRESHOLD_S)],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mailboxes", type=int, default=10_000)
    args = parser.parse_args(argv)
    result = run(args.mailboxes)
    targets = result.pop("targets")
    print(json.dumps(result))
    for name, value, threshold in targets:
        verdict = "PASS" if value <= threshold else "FAIL"
        print(f"TARGET {name} {verdict} {value:.3f} {threshold}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
