"""Small renderers for command output: TOML for humans, aligned tables."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_scalar(v) for v in value) + "]"
    return json.dumps(str(value), ensure_ascii=False)


def to_toml(data: Mapping[str, Any]) -> str:
    """Render a JSON-like mapping of tables and arrays of tables as TOML."""
    lines: list[str] = []
    for key, value in data.items():
        if isinstance(value, Mapping):
            lines.append(f"\n[{key}]")
            lines.extend(f"{k} = {_scalar(v)}" for k, v in value.items() if v is not None)
        elif isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value):
            for entry in value:
                lines.append(f"\n[[{key}]]")
                lines.extend(f"{k} = {_scalar(v)}" for k, v in entry.items() if v is not None)
        elif value is not None and not isinstance(value, list):
            lines.insert(0, f"{key} = {_scalar(value)}")
    return "\n".join(lines).strip() + "\n"


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain aligned text table."""
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    out = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    ]
    out.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(out)
