"""Shared pieces of the fault tests: a config for the simulator, the daemon as a subprocess whose
JSON log lines can be waited on, plain-SQL access to the store, and a field-by-field comparison
of both sides.

Nothing here sleeps to synchronise: every wait re-checks a condition (a log line, a store row,
the simulator's state) until a deadline.
"""

from __future__ import annotations

import html
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from dateutil.rrule import rrulestr

from calsync.sim import SimHandle

Event = dict[str, Any]
APIS = ("ews", "graph")


# configuration --------------------------------------------------------------------------------


def write_config(
    sim: SimHandle,
    folder: Path,
    *,
    api: str,
    streaming: bool | None = None,
    level: str = "info",
    poll_interval: int = 10,
    mailboxes: Sequence[str] | None = None,
    extra: str = "",
) -> Path:
    """A config for the simulator's first tenant with the store in ``folder``.

    Streaming (EWS only) makes an Outlook edit due at once; Graph polls (delta) every
    ``poll_interval`` seconds.
    """
    info, q = sim.info, json.dumps
    tenant = info["tenants"][0]
    state = Path(info["ca_file"]).parent
    if streaming is None:
        streaming = api == "ews"
    lines = [
        f"[store]\nurl = {q('sqlite:///' + str(folder / 'calsync.db'))}\n",
        f"[daemon]\npoll_interval = {poll_interval}\npoll_jitter = 0\nmax_concurrent_syncs = 4",
        "shutdown_grace = 5\nlocal_scan_interval = 1\nmax_backoff = 10\n",
        f"[subscriptions]\nmode = {q('streaming' if streaming else 'off')}\n",
        # Graph cannot send updates without mailing attendees: an operator opts in (DESIGN.md)
        "[defaults]\nallow_meeting_updates = true\n" if api == "graph" else "",
        f'[logging]\nformat = "json"\nlevel = {q(level)}\n',
        extra,
        f"[[tenants]]\nname = {q(tenant['name'])}\napi = {q(api)}\n"
        f"tenant_id = {q(tenant['tenant_id'])}\nclient_id = {q(tenant['client_id'])}\n"
        f"client_secret_file = {q(str(state / (tenant['name'] + '.secret')))}\n"
        f"authority = {q(info['authority'])}\news_url = {q(info['ews_url'])}\n"
        f"graph_url = {q(info['graph_url'])}\nca_file = {q(info['ca_file'])}\n",
    ]
    for address in mailboxes if mailboxes is not None else tenant["mailboxes"]:
        lines.append(f"[[mailboxes]]\naddress = {q(address)}\ntenant = {q(tenant['name'])}\n")
    path = folder / "calsync.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    path.chmod(0o600)
    return path


def calsync(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "calsync", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def wait_until(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    """Re-check ``condition`` (a store query, a simulator call) until it is truthy."""
    deadline = time.monotonic() + timeout
    pause = 0.02
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        threading.Event().wait(pause)  # a poll interval, not a synchronisation
        pause = min(pause * 2, 0.25)


def wait_for_nothing(problems: Callable[[], list[str]], timeout: float, what: str) -> None:
    """Re-check until ``problems()`` is empty; the last problems are the failure message."""
    last: list[str] = []

    def check() -> bool:
        nonlocal last
        last = problems()
        return not last

    try:
        wait_until(check, timeout, what)
    except AssertionError as exc:
        raise AssertionError(f"{exc}:\n" + "\n".join(last[:40])) from None


# the daemon -----------------------------------------------------------------------------------


class Daemon:
    """``calsync run`` as a subprocess; its stderr lines parsed as JSON events."""

    def __init__(self, config: Path, log: Path | None = None) -> None:
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.log = log.open("a", encoding="utf-8") if log is not None else None
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "calsync", "run", "--config", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.lines = 0
        self.events: list[Event] = []
        self.text: list[str] = []
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.popen.stderr is not None
        for line in self.popen.stderr:
            if self.log is not None:
                self.log.write(line)
            with self._cond:
                self.lines += 1
                self.text.append(line.rstrip("\n"))
                try:
                    event = json.loads(line)
                except ValueError:
                    event = None
                if isinstance(event, dict):
                    self.events.append(event)
                self._cond.notify_all()
        if self.log is not None:
            self.log.close()
        with self._cond:
            self._cond.notify_all()

    def since(self, mark: int, name: str | None = None, **fields: Any) -> list[Event]:
        with self._cond:
            found = self.events[mark:]
        return [
            e
            for e in found
            if (name is None or e.get("event") == name)
            and all(e.get(k) == v for k, v in fields.items())
        ]

    def mark(self) -> int:
        with self._cond:
            return len(self.events)

    def wait(self, condition: Callable[[], Any], timeout: float, what: str) -> Any:
        """Wait until ``condition()`` is truthy, re-checked on every new log line."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                result = condition()
                if result:
                    return result
                left = deadline - time.monotonic()
                if left <= 0 or (self.popen.poll() is not None and not self._reader.is_alive()):
                    tail = "\n".join(self.text[-25:])
                    raise AssertionError(f"timed out waiting for {what}; last lines:\n{tail}")
                self._cond.wait(min(left, 0.25))

    def wait_event(self, name: str, timeout: float, mark: int = 0, **fields: Any) -> Event:
        found: list[Event] = self.wait(
            lambda: self.since(mark, name, **fields), timeout, f"{name} {fields}"
        )
        return found[0]

    def wait_lines(self, count: int, timeout: float, quiet: float = 0.5) -> bool:
        """Wait until the daemon has written ``count`` lines; False when it fell quiet (no line
        for ``quiet`` seconds once started: it is idle) or at the deadline."""
        deadline = time.monotonic() + timeout
        with self._cond:
            seen, last = self.lines, time.monotonic()
            while self.lines < count:
                now = time.monotonic()
                if self.lines != seen:
                    seen, last = self.lines, now
                started = any(e.get("event") == "daemon_started" for e in self.events)
                if (
                    now >= deadline
                    or self.popen.poll() is not None
                    or (started and now - last >= quiet)
                ):
                    return False
                self._cond.wait(0.05)
        return True

    def kill9(self) -> int:
        self.popen.send_signal(signal.SIGKILL)
        code = self.popen.wait(timeout=30)
        self._reader.join(timeout=10)
        return code

    def stop(self, timeout: float = 30) -> int:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
        try:
            code = self.popen.wait(timeout)
        finally:
            if self.popen.poll() is None:
                self.popen.kill()
                self.popen.wait(10)
        self._reader.join(timeout=10)
        return code

    def close(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait(10)
        self._reader.join(timeout=10)
        if self.popen.stderr is not None:
            self.popen.stderr.close()


# the store ------------------------------------------------------------------------------------


def sql(db: Path, query: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    with closing(sqlite3.connect(db, timeout=20)) as conn, conn:
        return conn.execute(query, tuple(params)).fetchall()


def rows(db: Path, mailbox: str) -> list[dict[str, Any]]:
    with closing(sqlite3.connect(db, timeout=20)) as conn:
        conn.row_factory = sqlite3.Row
        found = conn.execute("SELECT * FROM events WHERE mailbox = ?", (mailbox,)).fetchall()
        return [dict(r) for r in found]


def utc(value: str) -> str:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC).isoformat()


# comparing both sides -------------------------------------------------------------------------

_TAG = re.compile(r"<[^>]+>")


def _text(body: str | None) -> str:
    return " ".join(html.unescape(_TAG.sub(" ", body or "")).split())


def _rrule(text: str | None) -> tuple[frozenset[str], frozenset[str]]:
    """(RRULE parts, EXDATE instants) of a recurrence, independent of their order."""
    parts: set[str] = set()
    exdates: set[str] = set()
    for line in (text or "").splitlines():
        if line.startswith("RRULE:"):
            parts |= set(line[6:].split(";"))
        elif line.startswith("EXDATE"):
            exdates |= {v[:8] if "VALUE=DATE" in line else v for v in line.split(":")[1].split(",")}
    return frozenset(parts), frozenset(exdates)


def item_fields(item: dict[str, Any]) -> dict[str, Any]:
    """The comparable fields of an item of the simulator's admin API."""
    all_day = bool(item["is_all_day"])
    deleted = {d.replace("-", "").replace(":", "") for d in item["deleted_occurrences"]}
    if all_day:
        deleted = {d[:8] for d in deleted}
    return {
        "subject": item["subject"],
        "location": item["location"] or "",
        "body": _text(item["body"]),
        "start": item["start"][:10] if all_day else utc(item["start"]),
        "end": item["end"][:10] if all_day else utc(item["end"]),
        "is_all_day": all_day,
        "show_as": item["show_as"],
        "sensitivity": item["sensitivity"],
        "categories": sorted(item["categories"]),
        "reminder_minutes": item["reminder_minutes"],
        "recurrence": (_rrule(item["recurrence"])[0], frozenset(deleted)),
        "original_start": utc(item["original_start"]) if item["original_start"] else None,
    }


def row_fields(row: dict[str, Any]) -> dict[str, Any]:
    all_day = bool(row["is_all_day"])
    return {
        "subject": row["subject"] or "",
        "location": row["location"] or "",
        "body": _text(row["body"]),
        "start": row["starts_at"][:10] if all_day else utc(row["starts_at"]),
        "end": row["ends_at"][:10] if all_day else utc(row["ends_at"]),
        "is_all_day": all_day,
        "show_as": row["show_as"],
        "sensitivity": row["sensitivity"],
        "categories": sorted(json.loads(row["categories"] or "[]")),
        "reminder_minutes": row["reminder_minutes"],
        "recurrence": _rrule(row["recurrence"]),
        "original_start": utc(row["original_start"]) if row["original_start"] else None,
    }


def _keys(
    items: list[dict[str, Any]], local: list[dict[str, Any]]
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Matching keys of items and rows: calsync's id for an item calsync pushed (it carries the
    id as an extended property; Graph cannot set the iCalendar UID of a new event), else the
    UID; a modified occurrence adds its original start to its series' key."""
    pushed = {i["extended_properties"].get("calsync-id") for i in items} - {None}
    by_item_id = {i["item_id"]: i for i in items}
    by_row_id = {r["id"]: r for r in local}

    def item_key(item: dict[str, Any]) -> tuple[Any, ...]:
        master = by_item_id.get(item["series_item_id"]) if item["series_item_id"] else None
        if master is not None:
            return (*item_key(master), utc(item["original_start"]))
        cid = item["extended_properties"].get("calsync-id")
        return ("id", cid) if cid else ("uid", item["uid"])

    def row_key(row: dict[str, Any]) -> tuple[Any, ...]:
        master = by_row_id.get(row["series_id"]) if row["series_id"] else None
        if master is not None:
            return (*row_key(master), utc(row["original_start"]))
        return ("id", row["id"]) if row["id"] in pushed else ("uid", row["uid"])

    return [item_key(i) for i in items], [row_key(r) for r in local]


def empty_series(item: dict[str, Any]) -> bool:
    """A series whose pattern yields no occurrence at all (the simulator generates a few): Graph's
    calendarView delta, like Microsoft's, never returns it, since no instance is in the window."""
    if not item["recurrence"]:
        return False
    start = datetime.fromisoformat(item["start"])
    rule = rrulestr(item["recurrence"].splitlines()[0], dtstart=start)
    return rule.after(start - timedelta(seconds=1), inc=True) is None


def differences(sim: SimHandle, db: Path, mailboxes: Sequence[str], api: str = "ews") -> list[str]:
    """Every way in which the store differs from Exchange (empty: both sides equal).

    Duplicates on either side and calsync ids pushed twice count as differences.
    """
    problems: list[str] = []
    for mailbox in mailboxes:
        items = sim.admin.events(mailbox)
        local = rows(db, mailbox)
        item_keys, row_keys = _keys(items, local)
        for name, keys in (("items", item_keys), ("rows", row_keys)):
            problems += [
                f"{mailbox}: {n} {name} for {k}" for k, n in Counter(keys).items() if n > 1
            ]
        by_key = dict(zip(row_keys, local, strict=True))
        for key, item in zip(item_keys, items, strict=True):
            row = by_key.pop(key, None)
            if row is None and api == "graph" and empty_series(item):
                continue
            if row is None:
                problems.append(
                    f"{mailbox}: item {item['subject']!r} {key} has no row ({item['start']} - "
                    f"{item['end']}, {item['recurrence']}, {item['deleted_occurrences']})"
                )
                continue
            want, got = item_fields(item), row_fields(row)
            for field, value in want.items():
                if got[field] != value:
                    problems.append(
                        f"{mailbox}: {item['subject']!r} {field}: exchange {value!r} "
                        f"!= local {got[field]!r}"
                    )
            if row["sync_status"] != "synced":
                problems.append(f"{mailbox}: row {row['subject']!r} is {row['sync_status']}")
        problems += [f"{mailbox}: row {r['subject']!r} {k} has no item" for k, r in by_key.items()]
    return problems
