"""bot/adapters/redis."""
