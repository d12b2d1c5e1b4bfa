"""The pool that runs commands' work (Bolt's lazy listeners) is scheduled below the threads that ack."""

from __future__ import annotations

import os
import sys
import threading

import pytest

from bot.app import LISTENER_THREADS, listener_pool


def _own_niceness() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="a thread's own priority is Linux's")
def test_the_listener_threads_run_ten_steps_below_the_thread_that_acks() -> None:
    acking = _own_niceness()
    pool = listener_pool(10)
    try:
        seen = {pool.submit(_own_niceness).result(timeout=5) for _ in range(LISTENER_THREADS * 3)}
    finally:
        pool.shutdown()
    assert seen == {min(19, acking + 10)}
    assert _own_niceness() == acking  # the caller's thread is left as it was


def test_nice_zero_leaves_the_listener_threads_at_the_processs_priority() -> None:
    pool = listener_pool(0)
    try:
        assert pool.submit(_own_niceness).result(timeout=5) == _own_niceness()
    finally:
        pool.shutdown()
