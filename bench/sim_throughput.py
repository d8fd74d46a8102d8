"""Requests per second the simulator serves: SyncFolderItems for small mailboxes.

Runs `python -m calsync.sim` as its own process and drives it with a light load generator
(raw HTTP/1.1 over keep-alive TLS sockets, in several processes; exchangelib would cost ~5 ms of
client CPU per request and measure itself). After a warm-up (one sync of every mailbox: the
simulator generates calendars on first use) two phases run for `--seconds` each: `initial`
(full syncs without a sync state, the IdOnly + 4 fields + calsync-id shape calsync uses) and
`incremental` (syncs with a current state, nothing changed: the idle daemon's request). Usage:

    python bench/sim_throughput.py [--seconds 5] [--processes 2] [--threads 16] [--mailboxes 50]
        [--events 10]

Prints one line per phase and, last, `sim_throughput syncfolderitems_rps=N target>=1000 PASS|FAIL`.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import re
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

TARGET_RPS = 1000
NS = (
    'xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" '
    'xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages" '
    'xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types"'
)
SHAPE = (
    "<m:ItemShape><t:BaseShape>IdOnly</t:BaseShape><t:AdditionalProperties>"
    '<t:FieldURI FieldURI="item:Subject"/><t:FieldURI FieldURI="calendar:Start"/>'
    '<t:FieldURI FieldURI="calendar:End"/><t:FieldURI FieldURI="calendar:IsAllDayEvent"/>'
    '<t:ExtendedFieldURI PropertySetId="4ca80195-c234-4a35-b00a-22be78edc0d5" '
    'PropertyName="calsync-id" PropertyType="String"/>'
    "</t:AdditionalProperties></m:ItemShape>"
)
STATE = re.compile(rb"<m:SyncState>([^<]*)</m:SyncState>")
LENGTH = re.compile(rb"(?i)\r\ncontent-length: *(\d+)")


def sync_body(address: str, state: str | None) -> bytes:
    state_xml = f"<m:SyncState>{state}</m:SyncState>" if state else ""
    return (
        f'<?xml version="1.0" encoding="utf-8"?><s:Envelope {NS}><s:Header>'
        '<t:RequestServerVersion Version="Exchange2016"/><t:ExchangeImpersonation>'
        f"<t:ConnectingSID><t:PrimarySmtpAddress>{address}</t:PrimarySmtpAddress>"
        "</t:ConnectingSID></t:ExchangeImpersonation></s:Header><s:Body><m:SyncFolderItems>"
        f'{SHAPE}<m:SyncFolderId><t:DistinguishedFolderId Id="calendar"/></m:SyncFolderId>'
        f"{state_xml}<m:MaxChangesReturned>512</m:MaxChangesReturned>"
        "</m:SyncFolderItems></s:Body></s:Envelope>"
    ).encode()


def start_sim(state_dir: Path, mailboxes: int, events: int) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "calsync.sim", "--state-dir", str(state_dir),
         "--mailboxes", str(mailboxes), "--events-per-mailbox", str(events)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if "ready" not in line:
        proc.kill()
        raise SystemExit(f"simulator did not start: {line!r}")
    return proc


def token(info: dict, ctx: ssl.SSLContext) -> str:
    tenant = info["tenants"][0]
    data = urllib.parse.urlencode(
        {"grant_type": "client_credentials", "client_id": tenant["client_id"],
         "client_secret": tenant["client_secret"],
         "scope": "https://outlook.office365.com/.default"}
    ).encode()  # fmt: skip
    url = f"{info['authority']}/{tenant['tenant_id']}/oauth2/v2.0/token"
    with urllib.request.urlopen(url, data=data, context=ctx) as resp:
        return str(json.load(resp)["access_token"])


def read_response(conn: ssl.SSLSocket, buffer: bytes) -> tuple[int, bytes, bytes]:
    """(status, body, leftover) of one HTTP/1.1 response with a Content-Length."""
    while b"\r\n\r\n" not in buffer:
        chunk = conn.recv(65536)
        if not chunk:
            raise ConnectionError("closed")
        buffer += chunk
    head, _, rest = buffer.partition(b"\r\n\r\n")
    status = int(head[9:12])
    match = LENGTH.search(head)
    length = int(match.group(1)) if match else 0
    while len(rest) < length:
        chunk = conn.recv(65536)
        if not chunk:
            raise ConnectionError("closed")
        rest += chunk
    return status, rest[:length], rest[length:]


def _client(
    job: tuple[str, str, int, str, float, int, dict[str, str | None], bool],
) -> tuple[int, int, dict[str, str | None]]:
    """One load-generator process: `threads` keep-alive connections, SyncFolderItems in a loop."""
    ews_url, ca_file, threads, bearer, seconds, seed, states, incremental = job
    url = urllib.parse.urlsplit(ews_url)
    ctx = ssl.create_default_context(cafile=ca_file)
    addresses = list(states)
    counts = [0] * threads
    errors = [0] * threads
    deadline = time.monotonic() + seconds

    def worker(n: int) -> None:
        rng = random.Random(seed * 1000 + n)
        raw = socket.create_connection((url.hostname, url.port))
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn = ctx.wrap_socket(raw, server_hostname=url.hostname)
        head = (
            f"POST {url.path} HTTP/1.1\r\nHost: {url.netloc}\r\n"
            f"Authorization: Bearer {bearer}\r\nContent-Type: text/xml; charset=utf-8\r\n"
        )
        buffer = b""
        while time.monotonic() < deadline:
            address = rng.choice(addresses)
            body = sync_body(address, states[address] if incremental else None)
            conn.sendall(f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body)
            status, data, buffer = read_response(conn, buffer)
            if status != 200 or b"NoError" not in data:
                errors[n] += 1
                continue
            counts[n] += 1
            match = STATE.search(data)
            if match and not incremental:
                states[address] = match.group(1).decode()
        conn.close()

    pool = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return sum(counts), sum(errors), states


def _warm(info: dict, bearer: str, addresses: list[str]) -> None:
    url = urllib.parse.urlsplit(info["ews_url"])
    ctx = ssl.create_default_context(cafile=info["ca_file"])
    conn = ctx.wrap_socket(socket.create_connection((url.hostname, url.port)),
                           server_hostname=url.hostname)  # fmt: skip
    head = (
        f"POST {url.path} HTTP/1.1\r\nHost: {url.netloc}\r\n"
        f"Authorization: Bearer {bearer}\r\nContent-Type: text/xml; charset=utf-8\r\n"
    )
    buffer = b""
    for address in addresses:
        body = sync_body(address, None)
        conn.sendall(f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body)
        status, _, buffer = read_response(conn, buffer)
        assert status == 200
    conn.close()


def run_phase(info: dict, bearer: str, args: argparse.Namespace,
              states: dict[str, str | None], incremental: bool) -> tuple[int, int]:  # fmt: skip
    """Drive the simulator from `args.processes` processes for `args.seconds`."""
    addresses = list(states)
    shards = [addresses[i :: args.processes] for i in range(args.processes)]
    jobs = [
        (info["ews_url"], info["ca_file"], args.threads, bearer, args.seconds, n,
         {a: states[a] for a in shard}, incremental)
        for n, shard in enumerate(shards) if shard
    ]  # fmt: skip
    with multiprocessing.Pool(len(jobs)) as pool:
        results = pool.map(_client, jobs)
    for _, _, seen in results:
        states.update(seen)
    return sum(r[0] for r in results), sum(r[1] for r in results)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--processes", type=int, default=2, help="load-generator processes")
    p.add_argument("--threads", type=int, default=16, help="connections per process")
    p.add_argument("--mailboxes", type=int, default=50)
    p.add_argument("--events", type=int, default=10)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        proc = start_sim(Path(tmp), args.mailboxes, args.events)
        try:
            info = json.loads((Path(tmp) / "sim.json").read_text())
            bearer = token(info, ssl.create_default_context(cafile=info["ca_file"]))
            states: dict[str, str | None] = dict.fromkeys(info["tenants"][0]["mailboxes"])
            # warm-up: every mailbox once (the simulator generates a calendar on first use)
            _warm(info, bearer, list(states))
            results = {}
            for phase, incremental in (("initial", False), ("incremental", True)):
                before = cpu_seconds(proc.pid)
                done, errors = run_phase(info, bearer, args, states, incremental)
                server_cpu = cpu_seconds(proc.pid) - before
                rps = done / args.seconds
                results[phase] = rps
                print(f"{phase:12s} SyncFolderItems: {done} ok, {errors} errors, {rps:,.0f} req/s "
                      f"({args.mailboxes} mailboxes x {args.events} events, "
                      f"{args.processes}x{args.threads} connections; simulator CPU "
                      f"{server_cpu / max(done, 1) * 1000:.2f} ms/request, "
                      f"{server_cpu / args.seconds:.0%} of a core)")  # fmt: skip
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    worst = min(results.values())
    verdict = "PASS" if worst >= TARGET_RPS else "FAIL"
    print(f"sim_throughput syncfolderitems_rps={worst:.0f} target>={TARGET_RPS} {verdict}")
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    raise SystemExit(main())
