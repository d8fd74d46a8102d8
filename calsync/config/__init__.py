"""calsync's configuration: one TOML file, ``CALSYNC_*`` overrides, secrets from many places.

The only package that reads configuration files and the environment for settings.
"""

from __future__ import annotations

from calsync.config.load import Config, MailboxConfig, TenantConfig, config_path, load_config
from calsync.config.models import CalsyncSettings, TenantSettings
from calsync.config.secrets import SecretSource

__all__ = [
    "CalsyncSettings",
    "Config",
    "MailboxConfig",
    "SecretSource",
    "TenantConfig",
    "TenantSettings",
    "config_path",
    "load_config",
]
