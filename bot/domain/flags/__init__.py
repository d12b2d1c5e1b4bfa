"""Feature flags: list and show; on/off; kill at once, loudly; unkill and guarded rollouts through approvals.

- ``model.py``: a flag's state and one change; ``changes.py``: the rules (effective state, guards) and applying a change.
- ``ports.py``: the provider (SQL table, Unleash) and opsbot's flag history.
- ``service.py``: ``Flags``, its parts (``commands``, ``actions``, announcements, approval outcomes) and declaration.
"""
