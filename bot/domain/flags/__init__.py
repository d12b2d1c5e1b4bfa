"""bot/domain/flags."""
