"""bot/domain/deploys."""
