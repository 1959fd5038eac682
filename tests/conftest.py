"""Shared fixtures: real ``redis-server`` and Tansu broker processes on free loopback ports.

* ``redis_server`` / ``kafka_broker``: one server per test module (cheap to share; tests use their own
  key prefixes / topic names, see ``unique_name``). Never stop or restart these.
* ``redis_factory`` / ``broker_factory``: call them to get private servers for a single test, which
  may stop and restart them (outage tests); they are killed at the end of the test.

Every server started here is killed at teardown; when a test fails, the tail of each running
server's log is attached to its report ("server logs" section).
"""
from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from signals.config import EngineConfig
from signals.ticks import TickBatch

from tests.servers import Broker, RedisServer, ServiceProcess, start_broker, start_redis

_RUNNING: list[RedisServer | Broker | ServiceProcess] = []


def _started(server):
    _RUNNING.append(server)
    return server


def _kill(server) -> None:
    server.stop()
    if server in _RUNNING:
        _RUNNING.remove(server)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed and _RUNNING:
        text = "\n\n".join(f"--- {s.name}{f' on port {s.port}' if s.port else ''} ({s.log_path}) ---\n{s.log_tail()}"
                             for s in _RUNNING)
        rep.sections.append(("server logs", text))


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory):
    """A ``redis-server`` shared by the tests of one module (``.url``, ``.port``, ``.client()``)."""
    server = _started(start_redis(tmp_path_factory.mktemp("redis")))
    yield server
    _kill(server)


@pytest.fixture(scope="module")
def kafka_broker(tmp_path_factory):
    """A Tansu broker shared by the tests of one module (``.bootstrap``, ``.create_topic(name, partitions)``)."""
    server = _started(start_broker(tmp_path_factory.mktemp("tansu")))
    yield server
    _kill(server)


def _private_servers(start, tmp_path):
    """Yield ``make()``, which starts a server this test owns; kill them all afterwards."""
    mine = []

    def make():
        server = _started(start(tmp_path))
        mine.append(server)
        return server

    yield make
    for server in mine:
        _kill(server)


@pytest.fixture
def redis_factory(tmp_path):
    """``redis_factory()`` starts a private ``redis-server`` this test may ``stop()`` and ``start()``."""
    yield from _private_servers(start_redis, tmp_path)


@pytest.fixture
def broker_factory(tmp_path):
    """``broker_factory()`` starts a private Tansu broker this test may ``stop()`` and ``start()``.

    Storage is in memory: after ``start()`` again the broker is empty.
    """
    yield from _private_servers(start_broker, tmp_path)


@pytest.fixture
def service_factory(tmp_path):
    """``service_factory(args, env=None)`` runs ``tapewatch run ARGS`` as a child process
    (:class:`tests.servers.ServiceProcess`); anything still running is killed at teardown."""
    mine: list[ServiceProcess] = []

    def make(args: list[str], *, env: dict[str, str] | None = None) -> ServiceProcess:
        proc = _started(ServiceProcess(tmp_path, args, env=env))
        mine.append(proc)
        return proc

    yield make
    for proc in mine:
        _kill(proc)


_SEQ = itertools.count()


@pytest.fixture
def unique_name():
    """``unique_name("ticks")`` -> a topic / group / key prefix no other test in the session uses."""
    run = uuid.uuid4().hex[:6]

    def make(prefix: str) -> str:
        return f"{prefix}-{run}-{next(_SEQ)}"

    return make


@dataclass(frozen=True)
class RegimeTape:
    """A small labelled tape for service tests: ``ticks``, the engine ``config`` and the same config
    as a TOML file (``config_path``, for ``tapewatch run --config``)."""

    ticks: TickBatch
    config: EngineConfig
    config_path: Path


@pytest.fixture(scope="session")
def regime_tape(tmp_path_factory) -> RegimeTape:
    """One trading day of three instruments from ``signals.scenarios`` (seed 4): about 66k ticks
    with steady-flow and burst entries and exits."""
    from signals.scenarios import generate

    sc = generate(seed=4, instruments=6, days=1)
    keep = np.isin(np.asarray(sc.ticks.instruments), ["BUND", "CSI300ETF", "USDJPY"])[sc.ticks.code]
    path = tmp_path_factory.mktemp("tape") / "engine.toml"
    sc.write_config(path)
    t = sc.ticks.select(keep)
    ticks = TickBatch.from_columns(t.instrument_names().astype(str), t.ts, t.price, t.size, t.side)
    return RegimeTape(ticks=ticks, config=sc.config, config_path=path)
