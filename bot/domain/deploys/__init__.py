"""Deploys and rollbacks: requests with approvals, fenced deploy locks, providers, verification, freezes, history.

- ``model.py``: the deploy record and its states, freezes, provider orders and results; ``ports.py``: its repository
  and the providers.
- ``service.py``: ``Deploys``, its parts built from ``DeployDeps``, and the family's declaration. The parts:
  ``requests`` (deploy, cancel), ``rollbacks``, ``outcomes`` (what an approval decides), ``execution`` (the job that
  runs a deploy), ``verification``, ``freezes``, ``freeze_takeover`` (rollbacks through incident freezes), ``history``.
"""
