"""bot/adapters/sql."""
