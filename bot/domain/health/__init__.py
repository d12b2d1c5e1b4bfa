"""Health: checks on demand (`/ops health`), background watches with the runbook's alerting rules, alert buttons.

- ``model.py``, ``judge.py``, ``rules.py``: what a check found, how it is judged, the watch state machine (pure).
- ``ports.py``: the probe that runs checks, the watch store shared by replicas.
- ``service.py``: ``HealthService`` (commands, alert lookups, Silence 1h); ``watches.py``: ``HealthWatches`` (jobs).
"""
