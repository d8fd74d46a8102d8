"""The command line: parses arguments, runs a command, turns calsync errors into English.

Command output (tables, ``--json`` reports) goes to stdout; logs go to stderr.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import TextIO

from calsync import __version__
from calsync.errors import CalsyncError, ConfigError, LockHeld, StoreError, StoreUnavailable

EXIT_OK = 0
EXIT_NOT_OK = 1  # some mailbox or tenant is not ok (details in the output)
EXIT_CONFIG = 2  # invalid configuration or usage
EXIT_STORE_UNAVAILABLE = 3
EXIT_LOCKED = 4  # another calsync process holds this mailbox or store
EXIT_INTERNAL = 70

Handler = Callable[[argparse.Namespace], int]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(EXIT_CONFIG, f"{self.prog}: error: {message}\n")


def _add_config(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="configuration file (default: $CALSYNC_CONFIG, then /etc/calsync/calsync.toml)",
    )


def build_parser() -> argparse.ArgumentParser:
    from calsync.cli import commands

    parser = _Parser(
        prog="calsync",
        description="Keep the calendars of many Exchange mailboxes in sync with a local store.",
    )
    parser.add_argument("--version", action="version", version=f"calsync {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    p = sub.add_parser(
        "check-config", help="validate the configuration and print it, secrets masked"
    )
    _add_config(p)
    p.add_argument("--json", action="store_true", help="print the effective configuration as JSON")
    p.set_defaults(handler=commands.check_config)

    for name, register in commands.REGISTRY:
        register(sub, _add_config, name)

    p = sub.add_parser(
        "sim",
        help="run the Microsoft 365 simulator (Entra ID + EWS over HTTPS) for demos and tests",
        add_help=False,
    )
    p.add_argument("sim_args", nargs=argparse.REMAINDER)
    p.set_defaults(handler=_run_sim)
    return parser


def _run_sim(args: argparse.Namespace) -> int:
    from calsync import sim

    return sim.main(list(args.sim_args))


def main(argv: Sequence[str] | None = None, *, stderr: TextIO | None = None) -> int:
    err = stderr or sys.stderr
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if argv[:1] == ["sim"]:  # the simulator parses its own options (and its own --help)
        from calsync import sim

        return sim.main(argv[1:])
    args = parser.parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args)
    except ConfigError as exc:
        print(f"calsync: {exc}", file=err)
        return EXIT_CONFIG
    except LockHeld as exc:
        print(f"calsync: {exc}", file=err)
        return EXIT_LOCKED
    except StoreUnavailable as exc:
        print(f"calsync: store unavailable: {exc}", file=err)
        return EXIT_STORE_UNAVAILABLE
    except StoreError as exc:
        print(f"calsync: store error: {exc}", file=err)
        return EXIT_STORE_UNAVAILABLE
    except CalsyncError as exc:
        hint = f"\n  hint: {exc.hint}" if exc.hint else ""
        print(f"calsync: {exc} [{exc.error_code}]{hint}", file=err)
        return EXIT_NOT_OK
    except KeyboardInterrupt:
        return 130
    except Exception:  # the last line of defence: say what broke, with the traceback in the log
        import traceback

        print("calsync: internal error (this is a bug, please report it):", file=err)
        traceback.print_exc(file=err)
        return EXIT_INTERNAL
