"""Command handlers. Each returns an exit code; errors propagate to ``calsync.cli.main``."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from calsync.cli import daemon_cmd
from calsync.cli.render import to_toml
from calsync.config import Config, load_config

AddConfig = Callable[[argparse.ArgumentParser], None]
Register = Callable[[Any, AddConfig, str], None]


# (name, register) pairs for commands defined in their own modules
def _ops(sub: Any, add_config: AddConfig, name: str) -> None:
    from calsync.cli import ops

    ops.register(sub, add_config, name)


REGISTRY: list[tuple[str, Register]] = [("ops", _ops), ("daemon", daemon_cmd.register)]


def load(args: argparse.Namespace) -> Config:
    return load_config(getattr(args, "config", None))


def check_config(args: argparse.Namespace) -> int:
    config = load(args)
    effective = effective_config(config)
    if args.json:
        print(json.dumps({"config": effective, "warnings": list(config.warnings)}, indent=2))
    else:
        print(f"# effective configuration of {config.path} (secrets masked)")
        print(
            f"# {len(config.tenants)} tenant(s), {len(config.mailboxes)} mailbox(es), "
            f"{sum(1 for m in config.mailboxes if m.enabled)} enabled"
        )
        print(to_toml(effective))
    for warning in config.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return 0


def effective_config(config: Config) -> dict[str, Any]:
    """The configuration as calsync will use it: defaults filled in, groups expanded."""
    data: dict[str, Any] = config.settings.model_dump(
        mode="json", exclude={"mailboxes", "mailbox_groups"}, exclude_none=True
    )
    data["mailboxes"] = [
        {
            "address": m.address,
            "tenant": m.mailbox.tenant,
            "direction": str(m.mailbox.direction),
            "conflict": str(m.mailbox.conflict),
            "window_past_days": m.mailbox.window_past_days,
            "window_future_days": m.mailbox.window_future_days,
            "max_delete_share": m.mailbox.max_delete_share,
            "max_delete_min": m.mailbox.max_delete_min,
            "enabled": m.enabled,
            "allow_meeting_updates": m.allow_meeting_updates,
        }
        for m in config.mailboxes
    ]
    return data
