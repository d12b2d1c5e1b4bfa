"""Redis: deploy locks with fencing, lock waiters, health watch state, short-lived state behind opaque ids, the RQ job queue."""
