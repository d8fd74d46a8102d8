"""Where a tenant's secret comes from: inline, a file, the environment, a systemd credential.

A ``SecretSource`` is read again on every call, so a rotated secret file (or a SIGHUP that
points elsewhere) is used from the next token request without a restart. Its ``repr`` and
``describe()`` name the place, never the value.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from calsync.errors import ConfigError


@dataclass(frozen=True)
class SecretSource:
    """One secret's origin. ``kind`` is inline, file, env or credential."""

    kind: str
    location: str  # file path, variable name or credential name; "" for inline
    _inline: str | None = field(default=None, repr=False, compare=False)
    _environ: Mapping[str, str] | None = field(default=None, repr=False, compare=False)

    def describe(self) -> str:
        if self.kind == "inline":
            return "the inline value in the configuration file"
        if self.kind == "file":
            return f"the file {self.location}"
        if self.kind == "env":
            return f"the environment variable {self.location}"
        return f"the systemd credential {self.location} ($CREDENTIALS_DIRECTORY)"

    def read(self) -> str:
        """The secret's value, stripped of surrounding whitespace; ConfigError if unreadable."""
        environ = self._environ if self._environ is not None else os.environ
        if self.kind == "inline":
            return self._inline or ""
        if self.kind == "env":
            value = environ.get(self.location)
            if not value:
                raise ConfigError([f"environment variable {self.location} is not set or empty"])
            return value.strip()
        path = self.path(environ)
        try:
            value = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError([f"cannot read {self.describe()}: {exc.strerror}"]) from None
        if not value:
            raise ConfigError([f"{self.describe()} is empty"])
        return value

    def read_bytes(self) -> bytes:
        """The raw bytes (for certificates: PEM with the private key)."""
        environ = self._environ if self._environ is not None else os.environ
        if self.kind in ("inline", "env"):
            return self.read().encode()
        try:
            return self.path(environ).read_bytes()
        except OSError as exc:
            raise ConfigError([f"cannot read {self.describe()}: {exc.strerror}"]) from None

    def path(self, environ: Mapping[str, str] | None = None) -> Path:
        environ = environ if environ is not None else os.environ
        if self.kind == "file":
            return Path(self.location)
        if self.kind == "credential":
            directory = environ.get("CREDENTIALS_DIRECTORY")
            if not directory:
                raise ConfigError(
                    [
                        f"systemd credential {self.location}: $CREDENTIALS_DIRECTORY is not set "
                        "(use LoadCredential= in the unit, or client_secret_file instead)"
                    ]
                )
            return Path(directory) / self.location
        raise ValueError(f"a {self.kind} secret has no path")


def inline(value: str) -> SecretSource:
    return SecretSource("inline", "", _inline=value)


def from_file(path: Path) -> SecretSource:
    return SecretSource("file", str(path))


def from_env(name: str, environ: Mapping[str, str] | None = None) -> SecretSource:
    return SecretSource("env", name, _environ=environ)


def from_credential(name: str, environ: Mapping[str, str] | None = None) -> SecretSource:
    return SecretSource("credential", name, _environ=environ)
