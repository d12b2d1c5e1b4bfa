"""Approvals: requests with a server-enforced two-person rule, shared by deploys, rollbacks and flags.

- ``model.py``: requests, votes and the rules that judge a vote or an expiry (pure).
- ``ports.py``: the repository, its unit of work, and ``ApprovalOutcome`` (what a family does once decided).
- ``service.py``: ``ApprovalService`` (request, vote, expire).
"""
