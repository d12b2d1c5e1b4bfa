"""bot/domain/shared."""
