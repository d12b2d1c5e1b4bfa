"""SQL: the engine and migrations, every table (``tables.py``), the repositories behind one unit of work, the audit log."""
