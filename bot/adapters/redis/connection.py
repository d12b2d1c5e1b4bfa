"""Connecting to Redis, and turning a lost Redis into a typed ``Unavailable`` the user can read."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from bot.domain.shared.errors import Unavailable

T = TypeVar("T")


def guard_redis(fn: Callable[..., T]) -> Callable[..., T]:
    """Turn a lost Redis into a typed Unavailable the user can read."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        try:
            return fn(*args, **kwargs)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise Unavailable("Redis", type(exc).__name__) from None
        except redis.ResponseError as exc:
            if "LOADING" in str(exc) or "READONLY" in str(exc):
                raise Unavailable("Redis", str(exc).split()[0]) from None
            raise

    return wrapper


def connect(url: str) -> redis.Redis:
    """A client with short timeouts: a stuck Redis must fail a command, not hang it."""
    return redis.Redis.from_url(
        url,
        decode_responses=True,
        socket_timeout=2,
        socket_connect_timeout=2,
        health_check_interval=30,
        retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), 1),
        retry_on_error=[redis.ConnectionError, redis.TimeoutError],
    )
