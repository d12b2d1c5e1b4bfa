"""The domain: decides, acts, records. Imports no Slack, HTTP, Redis or template library."""
