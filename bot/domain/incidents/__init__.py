"""Incidents: declare, update, roles, freeze, resolve; reminders and escalation as jobs; a timeline and a post-mortem draft.

- ``model.py``: the incident, its timeline entries and the deploy locks it freezes; ``ports.py``: its repository and Slack.
- ``service.py``: ``Incidents``, the parts built from ``IncidentDeps`` and the family's declaration; each part lives
  in the module named after what it does (``declare``, ``updates``, ``manage``, ``resolve``, ``reminders``, ``freezes``,
  ``timeline``).
"""
