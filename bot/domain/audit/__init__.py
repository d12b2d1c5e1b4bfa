"""bot/domain/audit."""
