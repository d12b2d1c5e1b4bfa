"""bot/domain/approvals."""
