"""Logs: JSON lines with stable fields, and no secret can reach the output, whatever carries it."""

from __future__ import annotations

import io
import json
import logging
import sys
from collections.abc import Iterator

import pytest
import structlog

from calsync import logs

SECRET = "Zq8~kX2.client-secret-VALUE_42"
TOKEN = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJodHRwczovL291dGxvb2sifQ.c2lnbmF0dXJlc2ln"
ASSERTION = (
    "eyJhbGciOiJQUzI1NiIsIng1dCNTMjU2IjoiYWJjIn0.eyJpc3MiOiJhcHAiLCJzdWIiOiJhcHAifQ.sig-nature"
)


@pytest.fixture
def output() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    logs.configure(format="json", level="debug", stream=stream, library_level="debug")
    logs.register_secrets([SECRET])
    yield stream
    logs.SECRETS.clear()
    structlog.contextvars.clear_contextvars()
    logs.configure(format="json", level="warning", stream=io.StringIO())


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def test_json_lines_have_event_level_timestamp_and_bound_context(output: io.StringIO) -> None:
    log = logs.get_logger()
    with structlog.contextvars.bound_contextvars(mailbox="alice@contoso.com", tenant="contoso"):
        log.info("sync_finished", requests=3)
    (line,) = lines(output)
    assert line["event"] == "sync_finished"
    assert line["level"] == "info"
    assert str(line["timestamp"]).endswith("Z")
    assert line["mailbox"] == "alice@contoso.com" and line["tenant"] == "contoso"
    assert line["requests"] == 3


@pytest.mark.parametrize(
    "emit",
    [
        lambda log: log.info("token_acquired", client_secret=SECRET),
        lambda log: log.info("oops", detail=f"request failed with secret {SECRET} in it"),
        lambda log: log.debug("ews_request", headers={"Authorization": f"Bearer {TOKEN}"}),
        lambda log: log.debug("ews_request", soap=f"<x>Authorization: Bearer {TOKEN}</x>"),
        lambda log: log.debug(
            "token", body=f"grant_type=client_credentials&client_assertion={ASSERTION}&x=1"
        ),
        lambda log: log.debug("token", response={"access_token": TOKEN, "expires_in": 5}),
        lambda log: log.warning("nested", data=[{"deep": {"deeper": [f"x {TOKEN} y"]}}]),
        lambda log: log.error("failed", exc_info=ValueError(f"bad secret {SECRET}")),
    ],
)
def test_calsync_events_never_show_secrets(output: io.StringIO, emit: object) -> None:
    emit(logs.get_logger())  # type: ignore[operator]
    text = output.getvalue()
    assert text.strip(), "nothing was logged"
    for value in (SECRET, TOKEN, ASSERTION, "c2lnbmF0dXJlc2ln"):
        assert value not in text
    assert logs.REDACTED in text


@pytest.mark.parametrize(
    "library",
    [
        "msal",
        "exchangelib.folders",
        "urllib3.connectionpool",
        "oauthlib.oauth2",
        "apscheduler.scheduler",
    ],
)
def test_library_debug_logs_go_through_the_same_pipeline(output: io.StringIO, library: str) -> None:
    logger = logging.getLogger(library)
    logger.debug("POST /token client_secret=%s", SECRET)
    logger.debug("headers: {'Authorization': 'Bearer %s', 'X-AnchorMailbox': 'a@b.c'}", TOKEN)
    logger.debug("token response: %s", {"access_token": TOKEN, "token_type": "Bearer"})
    logger.debug("assertion %s", ASSERTION)
    text = output.getvalue()
    parsed = lines(output)
    assert len(parsed) == 4 and all(p["logger"] == library for p in parsed)
    for value in (SECRET, TOKEN, ASSERTION):
        assert value not in text
    assert "a@b.c" in text  # ordinary values survive


def test_console_format_renders_without_json(monkeypatch: pytest.MonkeyPatch) -> None:
    stream = io.StringIO()
    logs.configure(format="console", level="info", stream=stream)
    logs.get_logger().info("daemon_started", mailboxes=2)
    assert "daemon_started" in stream.getvalue()
    assert not stream.getvalue().lstrip().startswith("{")


def test_level_filters(output: io.StringIO) -> None:
    logs.configure(format="json", level="warning", stream=output)
    log = logs.get_logger()
    log.info("not_shown")
    log.warning("shown")
    assert [line["event"] for line in lines(output)] == ["shown"]


def test_exchangelib_soap_dumps_are_held_back_even_at_debug(output: io.StringIO) -> None:
    """exchangelib's own XML dumps (bodies included) stay off; ews_request replaces them."""
    logging.getLogger("exchangelib.util").debug("Request XML: <t:Body>private notes</t:Body>")
    assert "private notes" not in output.getvalue()


def test_lines_go_to_the_stderr_of_the_moment_not_the_one_at_configure_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first, second = io.StringIO(), io.StringIO()
    monkeypatch.setattr(sys, "stderr", first)
    logs.configure(format="json")
    first.close()  # as a test runner closes a captured stream
    monkeypatch.setattr(sys, "stderr", second)
    logging.getLogger("apscheduler.executors.default").error("job failed")
    assert json.loads(second.getvalue().splitlines()[-1])["event"] == "job failed"
