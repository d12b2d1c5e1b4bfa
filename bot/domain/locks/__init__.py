"""Locks: deploy locks with fencing tokens, holds taken by hand, and the line of people waiting for one.

- ``ports.py``: ``LockInfo``, ``Lease``, the ``LockStore`` and ``LockWaiters`` ports.
- ``waiting.py``: ``DeployLocks``, what deploys and incidents use (refusals, releases that tell who waits).
- ``service.py``: ``LockCommands``, `/ops locks|lock|unlock` and the "hold ended" job.
"""
