"""bot/domain/health."""
