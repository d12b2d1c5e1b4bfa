"""Home: Slack's Home tab for each person — open incidents, approvals they may give, deploys, locks, freezes,
recent flag kills and their own recent actions — refreshed when opened and when something it shows changes.

- ``model.py``: the shared board, one person's rows, and the rules (who may vote, "and N more"); pure.
- ``ports.py``: the Home surface (``views.publish``), the recent viewers and their publish windows, what it reads.
- ``service.py``: ``HomeService`` (opened, clicked, changed, refresh) and ``ChangeWatcher`` (the refresh hook).
- ``messages.py``: ``HomeView``.
"""
