"""``tapewatch run`` end to end: a real Tansu broker and redis-server, the same tape as replay."""
from __future__ import annotations

import base64
import logging
import threading
import urllib.request

import numpy as np
import orjson
import pytest

from consumers.cli import main as cli_main
from consumers.service import Service, ServiceConfig
from consumers.state import CheckpointStore, connect
from consumers.wire import MAGIC, encode_batch, encode_json
from signals.engine import Engine
from signals.errors import ConfigError
from signals.ticks import TickBatch
from tests.servers import (assert_same_state, checkpointed_engine, free_port, publish_ticks, read_topic,
                           transitions_in_topic, wait_for)

pytestmark = pytest.mark.integration


def _bad_messages(fmt: str) -> list[tuple[bytes, bytes]]:
    """Two ``(key, value)`` messages of ``fmt`` that are rejected: one malformed, one with a bad price."""
    if fmt == "json":
        bad_price = encode_json(TickBatch.from_columns(["BUND"], [1_744_000_000 * 10**9], [-1.0], [1.0]))[0]
        return [(b"BUND", b"{oops"), (b"USDJPY", bad_price)]
    bad_row = encode_batch(TickBatch.from_columns(["USDJPY"], [1_744_000_000 * 10**9], [float("nan")], [1.0]))
    return [(b"BUND", MAGIC + b"\x01garbage"), (b"USDJPY", bad_row)]


@pytest.mark.parametrize("fmt", ["json", "batch"])
def test_the_same_tape_through_kafka_gives_exactly_the_replay_alerts_and_state(
        fmt, kafka_broker, redis_server, regime_tape, unique_name, capsys):
    topic, group = unique_name("ticks"), unique_name("group")
    alerts, dead = unique_name("alerts"), unique_name("dead")
    kafka_broker.create_topic(topic, 3)
    bad = _bad_messages(fmt)
    publish_ticks(kafka_broker.bootstrap, topic, regime_tape.ticks, fmt=fmt, extra=bad)

    svc = Service(ServiceConfig(
        kafka={"bootstrap_servers": [kafka_broker.bootstrap]}, topic=topic, group_id=group,
        redis_url=redis_server.url, alerts_topic=alerts, deadletter_topic=dead, metrics_port=0,
        exit_when_idle=1.5, session_timeout_ms=6000, heartbeat_interval_ms=1000,
        checkpoint_every_ticks=10_000, engine=regime_tape.config))
    assert svc.run() == 0

    replay = Engine(regime_tape.config)
    result = replay.process(regime_tape.ticks)
    assert result.alerts and any(t.event == "exit" for t in result.transitions)
    want = [orjson.loads(orjson.dumps(t.to_dict())) for t in result.transitions]
    got = transitions_in_topic(kafka_broker.bootstrap, alerts)
    key = lambda d: (d["instrument"], d["ts"], d["event"], d["id"])     # order across partitions is free
    assert sorted(got, key=key) == sorted(want, key=key)

    names = {n for n in regime_tape.ticks.instruments}
    assert_same_state(checkpointed_engine(redis_server.url, group=group, topic=topic, config=regime_tape.config),
                      replay, names)

    # health: every accepted tick counted once, rejects by reason, alerts by kind
    h = svc.health.registry.get_sample_value
    assert h("tapewatch_ticks_total") == np.count_nonzero(result.reason == 0)
    assert h("tapewatch_ticks_rejected_total", {"reason": "malformed"}) == 1
    assert h("tapewatch_ticks_rejected_total", {"reason": "bad_price"}) == 1
    assert h("tapewatch_dead_letters_total") == 2
    assert h("tapewatch_alerts_emitted_total", {"kind": "burst"}) == sum(t.kind == "burst" for t in result.alerts)
    assert h("tapewatch_checkpoint_duration_seconds_count") >= 2

    # dead letters carry the original bytes and where they came from
    letters = {orjson.loads(r.value)["original"]: orjson.loads(r.value) for r in read_topic(kafka_broker.bootstrap, dead)}
    for _, v in bad:
        letter = letters[base64.b64encode(v).decode()]
        assert letter["topic"] == topic and letter["offset"] in (0, 1) and letter["reason"] in ("malformed", "bad_price")

    # tapewatch status reads the same checkpoints
    assert cli_main(["status", "--redis-url", redis_server.url, "--group-id", group, "--topic", topic,
                     "--json", "BUND", "USDJPY"]) == 0
    doc = orjson.loads(capsys.readouterr().out)
    assert [s["instrument"] for s in doc["instruments"]] == ["BUND", "USDJPY"]
    assert doc["instruments"][0] == orjson.loads(orjson.dumps(replay.status("BUND")))
    assert sorted(p["partition"] for p in doc["partitions"]) == [0, 1, 2]
    assert cli_main(["status", "--redis-url", redis_server.url, "--group-id", group, "--topic", topic]) == 0
    table = capsys.readouterr().out
    assert "INSTRUMENT" in table and all(n in table for n in names)
    assert cli_main(["status", "--redis-url", redis_server.url, "--group-id", group, "--topic", topic, "NOPE"]) == 1
    assert "unknown instrument(s) NOPE" in capsys.readouterr().err


def test_status_without_checkpoints_says_where_it_looked(redis_server, capsys):
    assert cli_main(["status", "--redis-url", redis_server.url, "--group-id", "nobody"]) == 1
    assert "no checkpoints for group 'nobody'" in capsys.readouterr().err


def test_stop_from_another_thread_writes_a_final_checkpoint_and_leaves(kafka_broker, redis_server, regime_tape,
                                                                      unique_name, caplog):
    topic, group = unique_name("ticks"), unique_name("group")
    kafka_broker.create_topic(topic, 2)
    head = regime_tape.ticks.select(slice(0, 5000))
    publish_ticks(kafka_broker.bootstrap, topic, head)
    # and an instrument the config does not list, named like a yield: the service says it inverts it
    ts = head.ts[:50].copy()
    yld = TickBatch.from_columns(["BTP10Y"] * len(ts), ts, np.full(len(ts), 4.4), np.ones(len(ts)))
    publish_ticks(kafka_broker.bootstrap, topic, yld)
    head_names = set(head.instrument_names()) | {"BTP10Y"}
    svc = Service(ServiceConfig(
        kafka={"bootstrap_servers": [kafka_broker.bootstrap]}, topic=topic, group_id=group,
        redis_url=redis_server.url, alerts_topic=unique_name("alerts"), metrics_host="127.0.0.1", metrics_port=0,
        session_timeout_ms=6000, heartbeat_interval_ms=1000, checkpoint_every_seconds=3600,
        checkpoint_every_ticks=1_000_000, max_uncheckpointed_ticks=1_000_000, engine=regime_tape.config))
    outcome = []
    thread = threading.Thread(target=lambda: outcome.append(svc.run()))
    caplog.set_level(logging.INFO, logger="consumers.service")
    thread.start()
    try:
        wait_for(lambda: svc.health.registry.get_sample_value("tapewatch_ticks_total") == len(head) + len(yld),
                 timeout=30, what="the service to process the head of the tape")
        assert "instrument 'BTP10Y' is taken as a yield by its name" in caplog.text
        assert caplog.text.count("is taken as a yield by its name") == 1
        # nothing checkpointed yet (thresholds far away): only stop() writes the state
        assert CheckpointStore(connect(redis_server.url), group=group, topic=topic).partitions() == []
        # the exporter serves the health metrics and the engine's series while running
        page = urllib.request.urlopen(svc.exporter.url, timeout=10).read().decode()
        assert f"tapewatch_ticks_total {float(len(head) + len(yld))}" in page
        assert "tapewatch_assigned_partitions 2.0" in page and f"tapewatch_instruments {len(head_names)}\n" in page
    finally:
        svc.stop()
        thread.join(30)
    assert outcome == [0]
    replay = Engine(regime_tape.config)
    replay.process(head)
    replay.process(yld)
    assert_same_state(checkpointed_engine(redis_server.url, group=group, topic=topic, config=regime_tape.config),
                      replay, head_names)


def test_run_help_shows_an_env_var_for_every_option(capsys):
    with pytest.raises(SystemExit):
        cli_main(["run", "--help"])
    out = capsys.readouterr().out
    for flag in ("--config", "--topic", "--group-id", "--redis-url", "--checkpoint-every-ticks",
                 "--checkpoint-every-seconds", "--max-uncheckpointed-ticks", "--offset-reset-policy",
                 "--alerts-topic", "--deadletter-topic", "--metrics-host", "--metrics-port", "--exit-when-idle",
                 "--bootstrap-servers"):
        assert flag in out
        assert f"TAPEWATCH_{flag[2:].replace('-', '_').upper()}" in out.replace("\n", " ").replace("  ", "")


@pytest.mark.parametrize("argv, message", [
    (["--config", "/nonexistent/engine.toml"], "cannot read config file '/nonexistent/engine.toml'"),
    (["--session-timeout-ms", "6000", "--heartbeat-interval-ms", "3000"],
     "--heartbeat-interval-ms (3000) must be at most a third of --session-timeout-ms (6000)"),
    (["--checkpoint-every-ticks", "100", "--max-uncheckpointed-ticks", "10"],
     "--max-uncheckpointed-ticks (10) must be at least --checkpoint-every-ticks (100)"),
    (["--redis-url", "localhost:6379"], "must look like redis://host:6379/0"),
    (["--topic", "x", "--alerts-topic", "x"], "--topic 'x' must differ from the alerts and dead-letter topics"),
])
def test_bad_settings_fail_at_start_with_what_to_fix(argv, message, capsys):
    assert cli_main(["run", *argv]) == 2
    assert message in capsys.readouterr().err


def test_bad_env_var_fails_at_start(monkeypatch, capsys):
    monkeypatch.setenv("TAPEWATCH_OFFSET_RESET_POLICY", "newest")
    assert cli_main(["run"]) == 2
    assert "TAPEWATCH_OFFSET_RESET_POLICY='newest' must be one of fail, earliest, latest" in capsys.readouterr().err


def test_service_config_is_frozen_and_keyword_only():
    cfg = ServiceConfig(topic="t")
    with pytest.raises(AttributeError):
        cfg.topic = "u"
    with pytest.raises(TypeError):
        ServiceConfig("t")
    with pytest.raises(ConfigError, match="--offset-reset-policy must be one of fail, earliest, latest"):
        ServiceConfig(offset_reset_policy="newest")


def test_unreachable_kafka_fails_with_the_address(redis_server, capsys):
    address = f"127.0.0.1:{free_port()}"
    assert cli_main(["run", "--bootstrap-servers", address, "--bootstrap-timeout", "1", "--metrics-port", "-1",
                     "--redis-url", redis_server.url]) == 1
    assert f"tapewatch run: cannot use Kafka at {address}:" in capsys.readouterr().err


def test_unreachable_or_refusing_redis_fails_at_start_with_what_to_fix(redis_server, monkeypatch, capsys):
    monkeypatch.setattr("consumers.service.REDIS_START_TIMEOUT", 1.0)     # the start waits this long for Redis
    nowhere = f"redis://127.0.0.1:{free_port()}/0"
    no_such_db = f"redis://:secret@127.0.0.1:{redis_server.port}/99"      # Redis has databases 0-15
    for url, shown in ((nowhere, nowhere), (no_such_db, f"redis://***@127.0.0.1:{redis_server.port}/99")):
        assert cli_main(["run", "--bootstrap-servers", f"127.0.0.1:{free_port()}", "--metrics-port", "-1",
                         "--redis-url", url]) == 2
        err = capsys.readouterr().err
        assert f"tapewatch: error: cannot use Redis at {shown}:" in err and "Check --redis-url (TAPEWATCH_REDIS_URL)" in err
        assert "secret" not in err
