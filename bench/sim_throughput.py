"""Requests per second the simulator serves: SyncFolderItems for small mailboxes.

Runs `python -m calsync.sim` as its own process and drives it with a light load generator
(raw http.client over keep-alive TLS connections in threads; exchangelib would cost ~5 ms of
client CPU per request and measure itself). Usage:

    python bench/sim_throughput.py [--seconds 5] [--threads 4] [--mailboxes 50] [--events 10]

Prints one line per phase and, last, `sim_throughput syncfolderitems_rps=N target>=1000 PASS|FAIL`.
"""

from __future__ import annotations

import argparse
import http.client
import json
import random
import re
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
    with urllib.request.urlopen(url, data=data, context=ctx) as resp:  # noqa: S310
        return str(json.load(resp)["access_token"])


def run_phase(info: dict, ctx: ssl.SSLContext, bearer: str, seconds: float, threads: int,
              states: dict[str, str | None], incremental: bool) -> tuple[int, int]:  # fmt: skip
    url = urllib.parse.urlsplit(info["ews_url"])
    addresses = list(states)
    counts = [0] * threads
    errors = [0] * threads
    deadline = time.monotonic() + seconds

    def worker(n: int) -> None:
        rng = random.Random(n)
        conn = http.client.HTTPSConnection(url.hostname, url.port, context=ctx)
        headers = {"Authorization": f"Bearer {bearer}", "Content-Type": "text/xml; charset=utf-8"}
        while time.monotonic() < deadline:
            address = rng.choice(addresses)
            body = sync_body(address, states[address] if incremental else None)
            conn.request("POST", url.path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            if resp.status != 200 or b"NoError" not in data:
                errors[n] += 1
            else:
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
    return sum(counts), sum(errors)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--threads", type=int, default=4)
    p.add_argument("--mailboxes", type=int, default=50)
    p.add_argument("--events", type=int, default=10)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        proc = start_sim(Path(tmp), args.mailboxes, args.events)
        try:
            info = json.loads((Path(tmp) / "sim.json").read_text())
            ctx = ssl.create_default_context(cafile=info["ca_file"])
            bearer = token(info, ctx)
            states: dict[str, str | None] = dict.fromkeys(info["tenants"][0]["mailboxes"])
            results = {}
            for phase, incremental in (("initial", False), ("incremental", True)):
                done, errors = run_phase(info, ctx, bearer, args.seconds, args.threads, states,
                                         incremental)  # fmt: skip
                rps = done / args.seconds
                results[phase] = rps
                print(f"{phase:12s} SyncFolderItems: {done} ok, {errors} errors, {rps:,.0f} req/s "
                      f"({args.mailboxes} mailboxes x {args.events} events, {args.threads} "
                      "client threads)")  # fmt: skip
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    worst = min(results.values())
    verdict = "PASS" if worst >= TARGET_RPS else "FAIL"
    print(f"sim_throughput syncfolderitems_rps={worst:.0f} target>={TARGET_RPS} {verdict}")
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    raise SystemExit(main())
