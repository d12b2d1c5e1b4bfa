"""Which flag provider backs the ``FlagProvider`` port, from ``flags.provider`` in the ops config."""

from __future__ import annotations

from bot.adapters.flag_providers.sql import SqlFlagProvider
from bot.adapters.flag_providers.unleash import UnleashFlagProvider
from bot.config import Flags
from bot.config import SqlFlagProvider as SqlFlagConfig
from bot.domain.flags.ports import FlagProvider


def build_flag_provider(flags: Flags) -> FlagProvider | None:
    """The configured provider; None when flags are not configured (the commands then say so)."""
    if flags.provider is None:
        return None
    if isinstance(flags.provider, SqlFlagConfig):
        return SqlFlagProvider(flags.provider)
    return UnleashFlagProvider(flags.provider)
