"""bot/domain/locks."""
