"""bot/adapters."""
