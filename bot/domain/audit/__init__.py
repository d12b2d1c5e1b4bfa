"""Audit: `/ops audit`, recent entries of the tamper-evident audit log, filtered and paged (``service.py``)."""
