"""Structured logging: JSON lines on stderr (console on a TTY), one pipeline for every library.

``configure()`` is the only call of ``structlog.configure`` in calsync. A redaction processor
runs last before rendering, for calsync's events and for the stdlib logs of exchangelib, msal,
APScheduler and urllib3 alike: registered secret values, bearer tokens, JWTs, client assertions
and Authorization headers never reach the output, whatever key or message carries them.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
from collections.abc import Iterable, MutableMapping
from typing import Any, Literal, TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

REDACTED = "[redacted]"
LIBRARY_LOGGERS = (
    "exchangelib",
    "msal",
    "apscheduler",
    "urllib3",
    "requests_oauthlib",
    "oauthlib",
    "alembic",
    "sqlalchemy",
    "httpx",
    "httpcore",
    "aiohttp",
)

_PATTERNS = [
    # Authorization: Bearer <token> / Basic <b64> / NTLM <b64>, in headers dumped any way
    re.compile(
        r"(?i)((?:authorization|proxy-authorization)['\"]?\s*[:=]\s*['\"]?)"
        r"(?:bearer|basic|ntlm|negotiate)?\s*[^\s'\",}]+"
    ),
    re.compile(r"(?i)(\bbearer\s+)[A-Za-z0-9\-._~+/]+=*"),
    # form fields and JSON keys of token requests and responses
    re.compile(
        r"(?i)((?:client_secret|client_assertion|access_token|refresh_token|id_token|"
        r"password|assertion)['\"]?\s*[:=]\s*['\"]?)[^&\s'\",}]+"
    ),
    # anything shaped like a JWT
    re.compile(r"()eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*"),
]
_SENSITIVE_KEYS = frozenset(
    {
        "authorization",
        "client_secret",
        "client_assertion",
        "access_token",
        "refresh_token",
        "id_token",
        "password",
        "secret",
        "token",
    }
)


class _SecretRegistry:
    """Secret values known at run time (from the config), redacted wherever they appear."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: frozenset[str] = frozenset()

    def add(self, values: Iterable[str]) -> None:
        cleaned = {v for v in values if v and len(v) >= 4}
        with self._lock:
            self._values = self._values | cleaned

    def clear(self) -> None:
        with self._lock:
            self._values = frozenset()

    def scrub(self, text: str) -> str:
        for value in self._values:
            if value in text:
                text = text.replace(value, REDACTED)
        for pattern in _PATTERNS:
            text = pattern.sub(lambda m: m.group(1) + REDACTED, text)
        return text


SECRETS = _SecretRegistry()


def register_secrets(values: Iterable[str]) -> None:
    """Make these values unprintable: every log line containing one shows ``[redacted]``."""
    SECRETS.add(values)


def _scrub(value: Any, depth: int = 0) -> Any:
    if isinstance(value, str):
        return SECRETS.scrub(value)
    if depth > 6:
        return value
    if isinstance(value, dict):
        return {
            k: (REDACTED if str(k).lower() in _SENSITIVE_KEYS and v else _scrub(v, depth + 1))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return type(value)(_scrub(v, depth + 1) for v in value)
    if isinstance(value, bytes):
        return SECRETS.scrub(value.decode("utf-8", "replace"))
    return value


def redact(_logger: WrappedLogger, _name: str, event_dict: EventDict) -> EventDict:
    """structlog processor: scrub secrets from every value (keys named like secrets too)."""
    return _scrub(event_dict)  # type: ignore[no-any-return]


def _add_level(_logger: WrappedLogger, name: str, event_dict: EventDict) -> EventDict:
    event_dict.setdefault("level", "warning" if name == "warn" else name)
    return event_dict


def _stringify_event(_logger: WrappedLogger, _name: str, event_dict: EventDict) -> EventDict:
    event = event_dict.get("event")
    if not isinstance(event, str):
        event_dict["event"] = str(event)
    return event_dict


def _shared_processors() -> list[Processor]:
    return [
        structlog.contextvars.merge_contextvars,
        _add_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp"),
        structlog.stdlib.PositionalArgumentsFormatter(),
        structlog.processors.StackInfoRenderer(),
        _stringify_event,
    ]


_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}


def configure(
    *,
    format: Literal["json", "console", "auto"] = "auto",
    level: str = "info",
    stream: TextIO | None = None,
    library_level: str | None = None,
) -> None:
    """Set up structlog and route the stdlib loggers of libraries through the same pipeline.

    Without ``stream`` the lines go to whatever ``sys.stderr`` is when each is written (a
    caller that swaps stderr, as a test runner does, never leaves a handler on a closed file).
    """
    handler: logging.StreamHandler[TextIO] = (
        logging.StreamHandler(stream) if stream is not None else _CurrentStderr()
    )
    stream = stream or sys.stderr
    use_console = format == "console" or (format == "auto" and stream.isatty())
    renderer: Processor = (
        structlog.dev.ConsoleRenderer(colors=stream.isatty())
        if use_console
        else structlog.processors.JSONRenderer(ensure_ascii=False, default=str)
    )
    exception_processor: Processor = (
        structlog.processors.format_exc_info
        if use_console
        else structlog.processors.dict_tracebacks
    )
    numeric = _LEVELS.get(level.lower(), logging.INFO)
    shared = _shared_processors()
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            exception_processor,
            redact,
            renderer,
        ],
    )
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(numeric)
    # at level "debug" the libraries' debug logs come too (still redacted); otherwise warnings
    default_library = "debug" if numeric == logging.DEBUG else "warning"
    lib_numeric = _LEVELS.get((library_level or default_library).lower(), logging.WARNING)
    for name in LIBRARY_LOGGERS:
        logging.getLogger(name).setLevel(max(numeric, lib_numeric))
    # exchangelib's and requests-oauthlib's debug loggers dump whole SOAP documents, event
    # bodies included; calsync's own ews_request/ews_response events ([logging]
    # ews_protocol_debug) replace them, redacted.
    for name in (
        "exchangelib.util",
        "exchangelib.services",
        "exchangelib.protocol",
        "requests_oauthlib",
    ):
        logging.getLogger(name).setLevel(max(logging.INFO, numeric, lib_numeric))
    # SQLAlchemy logs SQL parameters (event bodies) at INFO: warnings only, whatever the level
    logging.getLogger("sqlalchemy").setLevel(max(logging.WARNING, numeric))


class _CurrentStderr(logging.StreamHandler):  # type: ignore[type-arg]
    """A stream handler that writes to the current ``sys.stderr`` (like logging's last resort)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        """The stream is always the current sys.stderr."""


def get_logger(**initial: Any) -> structlog.stdlib.BoundLogger:
    logger: structlog.stdlib.BoundLogger = structlog.get_logger("calsync", **initial)
    return logger


def bind(**values: Any) -> MutableMapping[str, Any]:
    """Bind context (mailbox, tenant, run_id) for the current thread/task's log lines."""
    return structlog.contextvars.bind_contextvars(**values)  # type: ignore[return-value]
