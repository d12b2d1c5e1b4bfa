"""The fault kit's TcpProxy, in front of the real Redis and the real PostgreSQL."""

from __future__ import annotations

import socket
import threading
import time

import pytest
import redis
import sqlalchemy as sa
from redis.backoff import NoBackoff
from redis.retry import Retry

from tests.faults import TcpProxy, pg_proxy, redis_proxy  # noqa: F401 - fixtures


def direct_client(url: str) -> redis.Redis:
    """A client that fails a command at the first connection error (redis-py retries 3 times by default)."""
    return redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2, retry=Retry(NoBackoff(), 0))


def test_a_redis_client_through_the_proxy_talks_to_the_real_redis(redis_proxy: TcpProxy, redis_url: str) -> None:
    client = direct_client(redis_proxy.url_for(redis_url))
    key = f"faults-test:{redis_proxy.port}"
    client.set(key, "through", ex=30)
    assert redis.Redis.from_url(redis_url).get(key) == b"through"
    assert redis_proxy.connections_seen == 1 and redis_proxy.open_connections == 1
    client.close()


def test_a_cut_fails_a_connected_redis_client_at_once_and_restore_brings_it_back(redis_proxy: TcpProxy, redis_url: str) -> None:
    client = direct_client(redis_proxy.url_for(redis_url))
    assert client.ping()
    assert redis_proxy.cut() == 1
    started = time.monotonic()
    with pytest.raises(redis.ConnectionError):
        client.ping()  # the pooled connection was reset
    with pytest.raises(redis.ConnectionError, match="refused"):
        client.ping()  # a new connection is refused
    assert time.monotonic() - started < 1.0, "a cut must fail clients at once, not by timeout"
    redis_proxy.restore()
    assert client.ping()
    assert (redis_proxy.connections_seen, redis_proxy.connections_dropped, redis_proxy.cuts) == (2, 1, 1)
    client.close()


def test_a_cut_wakes_a_client_blocked_in_a_read(redis_proxy: TcpProxy, redis_url: str) -> None:
    client = redis.Redis.from_url(redis_proxy.url_for(redis_url), socket_timeout=30, retry=Retry(NoBackoff(), 0))
    outcome: list[BaseException | object] = []

    def block() -> None:
        try:
            outcome.append(client.blpop([f"faults-test:never:{redis_proxy.port}"], timeout=20))
        except BaseException as exc:
            outcome.append(exc)

    reader = threading.Thread(target=block)
    reader.start()
    redis_proxy.wait_for_connections(1)
    time.sleep(0.2)  # BLPOP is on the wire
    started = time.monotonic()
    redis_proxy.cut()
    reader.join(timeout=5)
    assert not reader.is_alive() and time.monotonic() - started < 2
    assert isinstance(outcome[0], redis.ConnectionError)
    client.close()


def test_cut_for_restores_on_a_timer(redis_proxy: TcpProxy, redis_url: str) -> None:
    client = direct_client(redis_proxy.url_for(redis_url))
    redis_proxy.cut_for(0.5)
    assert redis_proxy.is_cut
    with pytest.raises(redis.ConnectionError):
        client.ping()
    deadline = time.monotonic() + 5
    while redis_proxy.is_cut and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not redis_proxy.is_cut and client.ping()
    client.close()


def test_down_lasts_the_seconds_asked_even_when_the_block_ends_sooner(redis_proxy: TcpProxy, redis_url: str) -> None:
    client = direct_client(redis_proxy.url_for(redis_url))
    started = time.monotonic()
    with redis_proxy.down(seconds=0.6), pytest.raises(redis.ConnectionError):
        client.ping()
    assert time.monotonic() - started >= 0.6
    assert not redis_proxy.is_cut and client.ping()
    client.close()


def test_down_restores_when_its_block_raises(redis_proxy: TcpProxy) -> None:
    with pytest.raises(RuntimeError), redis_proxy.down(seconds=30):
        raise RuntimeError("the test failed mid-outage")
    assert not redis_proxy.is_cut
    socket.create_connection(redis_proxy.address, timeout=2).close()


def test_new_connections_are_refused_while_cut(redis_proxy: TcpProxy) -> None:
    with redis_proxy.down():
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(redis_proxy.address, timeout=2)
        assert redis_proxy.port != 0
    socket.create_connection(redis_proxy.address, timeout=2).close()


def test_an_unreachable_upstream_closes_the_client_connection() -> None:
    with socket.socket() as spare:
        spare.bind(("127.0.0.1", 0))
        free_port = spare.getsockname()[1]  # nothing listens here once the socket closes
    with TcpProxy("127.0.0.1", free_port).start() as proxy:
        try:
            with socket.create_connection(proxy.address, timeout=2) as conn:
                assert conn.recv(1) == b""
        except ConnectionResetError:
            pass  # the reset can beat connect() back to the client
        deadline = time.monotonic() + 2
        while proxy.upstream_failures < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert proxy.upstream_failures == 1


def test_url_for_keeps_credentials_and_database_and_refuses_another_upstream(redis_proxy: TcpProxy) -> None:
    port = redis_proxy.port
    assert redis_proxy.url_for("redis://localhost:6379/3") == f"redis://127.0.0.1:{port}/3"
    assert redis_proxy.url_for("redis://:s3cret@127.0.0.1/0") == f"redis://:s3cret@127.0.0.1:{port}/0"
    pg = TcpProxy("127.0.0.1", 5432)  # url_for needs no running proxy
    assert pg.url_for("postgresql+psycopg://postgres:pw@127.0.0.1:5432/test?sslmode=disable") == (
        "postgresql+psycopg://postgres:pw@127.0.0.1:0/test?sslmode=disable"
    )
    with pytest.raises(ValueError, match="not this proxy's upstream"):
        redis_proxy.url_for("redis://127.0.0.1:6380/0")


def test_stop_resets_connections_and_frees_the_port(redis_url: str) -> None:
    proxy = TcpProxy("127.0.0.1", 6379).start()
    client = direct_client(proxy.url_for(redis_url))
    client.ping()
    proxy.stop()
    proxy.stop()  # idempotent
    with pytest.raises(redis.ConnectionError):
        client.ping()
    client.close()
    with socket.socket() as again:
        again.bind(("127.0.0.1", proxy.port))


# ----- PostgreSQL through SQLAlchemy and psycopg -----


def test_a_pre_ping_engine_through_the_proxy_recovers_after_a_cut(pg_proxy: TcpProxy, pg_url: str) -> None:
    engine = sa.create_engine(pg_proxy.url_for(pg_url), pool_pre_ping=True, connect_args={"connect_timeout": 2})
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT 1")).scalar() == 1
    assert engine.pool.checkedin() == 1  # a pooled connection, reset by the cut below
    pg_proxy.cut()
    started = time.monotonic()
    with pytest.raises(sa.exc.OperationalError), engine.connect() as conn:
        conn.execute(sa.text("SELECT 1"))
    assert time.monotonic() - started < 2
    pg_proxy.restore()
    with engine.connect() as conn:  # pre-ping finds the dead connection and opens a new one
        assert conn.execute(sa.text("SELECT 1")).scalar() == 1
    assert pg_proxy.connections_seen >= 2
    engine.dispose()


def test_a_cut_mid_transaction_fails_the_transaction(pg_proxy: TcpProxy, pg_url: str) -> None:
    engine = sa.create_engine(pg_proxy.url_for(pg_url), pool_pre_ping=True)
    with engine.connect() as conn:
        conn.execute(sa.text("CREATE TABLE faults_probe (n int)"))
        conn.commit()
    with pytest.raises(sa.exc.OperationalError), engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO faults_probe VALUES (1)"))
        pg_proxy.cut()
        conn.execute(sa.text("INSERT INTO faults_probe VALUES (2)"))
    pg_proxy.restore()
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM faults_probe")).scalar() == 0  # nothing committed
    engine.dispose()


def test_short_outages_back_to_back_always_come_back_listening(redis_proxy: TcpProxy) -> None:
    """The timer's restore and the block's restore meet on the loop: the second waits, it does not bind again."""
    for _ in range(40):
        with redis_proxy.down(seconds=0.05):
            pass
        socket.create_connection(redis_proxy.address, timeout=1).close()
    assert redis_proxy.cuts == 40 and not redis_proxy.is_cut
