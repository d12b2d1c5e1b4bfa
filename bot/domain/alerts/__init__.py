"""Alertmanager's alerts in Slack: one message per alert group, kept current, with Declare, Silence and Roll back."""
