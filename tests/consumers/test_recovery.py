"""Failure cases of ``tapewatch run`` (docs/recovery.md): crashes, rebalances, zombies, Redis and
broker outages, offsets that are no longer usable. Real Tansu broker and redis-server throughout;
``tapewatch run`` runs as a child process where a crash (kill -9) matters."""
from __future__ import annotations

import logging
import random
import threading
from collections import defaultdict

import numpy as np
import orjson
import pytest
from kafka.errors import KafkaError

from consumers.service import MISSING_PARTITION_REJOIN, Service, ServiceConfig, ServiceError, start_offset
from consumers.state import CheckpointStore, Claim, WriteResult, connect
from signals import kernels as K
from signals.engine import Engine
from tests.servers import (assert_same_state, checkpointed_engine, publish_ticks, transitions_in_topic,
                           wait_for)

pytestmark = pytest.mark.integration


def _chunks(ticks, n: int) -> list:
    edges = np.linspace(0, len(ticks), n + 1).astype(int)
    return [ticks.select(slice(a, b)) for a, b in zip(edges[:-1], edges[1:])]


def _replay(tape):
    engine = Engine(tape.config)
    return engine, engine.process(tape.ticks)


def _names(ticks) -> set[str]:
    return set(ticks.instrument_names())


def _all_checkpointed(broker, store: CheckpointStore, topic: str) -> bool:
    """Every partition's checkpointed next offset has reached the partition's end."""
    ends = broker.high_watermarks(topic)
    ckpts = {c.partition: c.offset for c in store.read_all()}
    return all(ckpts.get(p, 0 if end == 0 else -1) == end for p, end in ends.items())


def _config(broker, redis_url: str, tape, topic: str, group: str, alerts: str, **kw) -> ServiceConfig:
    base = dict(kafka={"bootstrap_servers": [broker.bootstrap]}, topic=topic, group_id=group, redis_url=redis_url,
                alerts_topic=alerts, deadletter_topic=alerts + ".dead", metrics_port=None, session_timeout_ms=6000,
                heartbeat_interval_ms=1000, checkpoint_every_ticks=2000, checkpoint_every_seconds=0.5,
                max_uncheckpointed_ticks=50_000, engine=tape.config)
    return ServiceConfig(**{**base, **kw})


class _Running:
    """A :class:`Service` on a thread."""

    def __init__(self, config: ServiceConfig):
        self.service = Service(config)
        self.result: list = []
        self.thread = threading.Thread(target=lambda: self.result.append(self.service.run()), daemon=True)
        self.thread.start()

    def stop(self) -> int:
        self.service.stop()
        self.thread.join(60)
        assert not self.thread.is_alive(), "service did not stop"
        return self.result[0]


def _assert_alerts_match_replay(got: list[dict], result) -> None:
    """Same transitions as replay (ids and all); a transition may repeat only with identical content."""
    want = {(t.id, t.event, t.ts): orjson.loads(orjson.dumps(t.to_dict())) for t in result.transitions}
    seen: dict[tuple, list[dict]] = defaultdict(list)
    for d in got:
        seen[(d["id"], d["event"], d["ts"])].append(d)
    assert set(seen) == set(want)
    for k, copies in seen.items():
        assert all(c == want[k] for c in copies), f"a re-emitted transition differs: {k}"


# ---- crashes ------------------------------------------------------------------------------------

def test_kill_9_at_random_points_then_restart_equals_the_uninterrupted_run(
        kafka_broker, redis_server, regime_tape, unique_name, service_factory):
    topic, group, alerts = unique_name("ticks"), unique_name("group"), unique_name("alerts")
    kafka_broker.create_topic(topic, 3)
    store = CheckpointStore(connect(redis_server.url), group=group, topic=topic)
    args = ["--bootstrap-servers", kafka_broker.bootstrap, "--topic", topic, "--group-id", group,
            "--redis-url", redis_server.url, "--alerts-topic", alerts, "--deadletter-topic", alerts + ".dead",
            "--config", str(regime_tape.config_path), "--metrics-port", "-1", "--session-timeout-ms", "3000",
            "--heartbeat-interval-ms", "1000", "--checkpoint-every-ticks", "1500", "--checkpoint-every-seconds", "0.2"]
    # replay first: it also compiles the numba kernel into its on-disk cache, so that the child
    # processes are killed while consuming, not while compiling
    replay, result = _replay(regime_tape)
    trials = 10
    chunks = _chunks(regime_tape.ticks, trials + 2)
    rng = random.Random(20250519)
    epoch = 0
    for i in range(trials):
        proc = service_factory(args)
        # wait until this process owns partition 0 (its claim bumps the epoch), then publish the next
        # chunk and kill -9 at a random moment: before, while or after it is processed and checkpointed
        epoch = wait_for(lambda: int(store.client.get(store.keys(0)[0]) or 0) > epoch and
                         int(store.client.get(store.keys(0)[0])), timeout=30, what=f"trial {i}: partition 0 claimed")
        publisher = threading.Thread(target=publish_ticks, args=(kafka_broker.bootstrap, topic, chunks[i]))
        publisher.start()
        threading.Event().wait(rng.uniform(0.2, 3.0))
        assert proc.kill() == -9, proc.log_tail()
        publisher.join()
    publish_ticks(kafka_broker.bootstrap, topic, chunks[trials])
    proc = service_factory(args + ["--exit-when-idle", "2"])
    publish_ticks(kafka_broker.bootstrap, topic, chunks[trials + 1])
    assert proc.wait(90) == 0, proc.log_tail()

    assert result.alerts
    assert_same_state(checkpointed_engine(redis_server.url, group=group, topic=topic, config=regime_tape.config),
                      replay, _names(regime_tape.ticks))
    _assert_alerts_match_replay(transitions_in_topic(kafka_broker.bootstrap, alerts), result)
    assert store.claim(0).token > trials          # every restart claimed the partitions again
    store.client.close()


def test_a_batch_that_fails_half_way_is_not_checkpointed_and_the_next_run_produces_it(
        kafka_broker, redis_server, regime_tape, unique_name):
    """The engine has processed a batch, then producing its alerts fails (the error stops ``run``):
    leaving the group must not checkpoint the state past that batch, or its alerts are lost."""
    topic, group, alerts = unique_name("ticks"), unique_name("group"), unique_name("alerts")
    kafka_broker.create_topic(topic, 3)
    publish_ticks(kafka_broker.bootstrap, topic, regime_tape.ticks)
    config = _config(kafka_broker, redis_server.url, regime_tape, topic, group, alerts, exit_when_idle=1.5)
    svc = Service(config)
    emit = svc._emit

    def failing_emit(transitions):
        if any(t.event == "enter" for t in transitions):
            raise KafkaError("injected: the alerts topic cannot be written")
        emit(transitions)

    svc._emit = failing_emit
    with pytest.raises(KafkaError, match="injected"):
        svc.run()
    assert Service(config).run() == 0
    replay, result = _replay(regime_tape)
    assert result.alerts
    _assert_alerts_match_replay(transitions_in_topic(kafka_broker.bootstrap, alerts), result)
    assert_same_state(checkpointed_engine(redis_server.url, group=group, topic=topic, config=regime_tape.config),
                      replay, _names(regime_tape.ticks))


# ---- rebalances and zombies ----------------------------------------------------------------------

def test_scaling_1_to_3_to_2_consumers_during_a_run_equals_the_single_consumer_run(
        kafka_broker, redis_server, regime_tape, unique_name):
    topic, group, alerts = unique_name("ticks"), unique_name("group"), unique_name("alerts")
    kafka_broker.create_topic(topic, 3)
    store = CheckpointStore(connect(redis_server.url), group=group, topic=topic)
    config = _config(kafka_broker, redis_server.url, regime_tape, topic, group, alerts)
    chunks = _chunks(regime_tape.ticks, 6)
    a = _Running(config)
    publish_ticks(kafka_broker.bootstrap, topic, chunks[0])
    wait_for(lambda: a.service.health.registry.get_sample_value("tapewatch_ticks_total"), timeout=30,
             what="the first consumer to process ticks")
    b, c = _Running(config), _Running(config)
    publish_ticks(kafka_broker.bootstrap, topic, chunks[1])
    wait_for(lambda: all(s.service.partitions for s in (a, b, c)), timeout=30, what="three consumers sharing the partitions")
    publish_ticks(kafka_broker.bootstrap, topic, chunks[2])
    publish_ticks(kafka_broker.bootstrap, topic, chunks[3])
    assert c.stop() == 0
    for chunk in chunks[4:]:
        publish_ticks(kafka_broker.bootstrap, topic, chunk)
    wait_for(lambda: _all_checkpointed(kafka_broker, store, topic), timeout=60, what="everything checkpointed")
    assert a.stop() == 0 and b.stop() == 0

    replay, result = _replay(regime_tape)
    assert_same_state(checkpointed_engine(redis_server.url, group=group, topic=topic, config=regime_tape.config),
                      replay, _names(regime_tape.ticks))
    _assert_alerts_match_replay(transitions_in_topic(kafka_broker.bootstrap, alerts), result)
    rebalances = sum(s.service.health.registry.get_sample_value("tapewatch_rebalances_total") for s in (a, b, c))
    assert rebalances >= 5
    store.client.close()


def test_a_consumer_that_lost_its_partition_is_fenced_and_rejoins(kafka_broker, redis_server, regime_tape,
                                                                  unique_name, caplog):
    topic, group, alerts = unique_name("ticks"), unique_name("group"), unique_name("alerts")
    kafka_broker.create_topic(topic, 2)
    store = CheckpointStore(connect(redis_server.url), group=group, topic=topic)
    first, second = _chunks(regime_tape.ticks, 2)
    svc = _Running(_config(kafka_broker, redis_server.url, regime_tape, topic, group, alerts))
    publish_ticks(kafka_broker.bootstrap, topic, first)
    wait_for(lambda: _all_checkpointed(kafka_broker, store, topic), timeout=60, what="the first half checkpointed")
    # Another process takes a partition over (as after a rebalance this consumer did not notice):
    # it claims a newer epoch and writes back the state it restored.
    ckpt = max(store.read_all(), key=lambda c: c.offset)
    p = ckpt.partition
    new_owner = store.claim(p).token
    assert store.write(p, new_owner, ckpt.state, ckpt.offset) is WriteResult.OK
    with caplog.at_level(logging.ERROR, logger="consumers.service"):
        publish_ticks(kafka_broker.bootstrap, topic, second)
        wait_for(lambda: "was claimed by a newer owner" in caplog.text, timeout=30, what="the fenced checkpoint")
        wait_for(lambda: _all_checkpointed(kafka_broker, store, topic), timeout=60, what="everything checkpointed")
    assert svc.stop() == 0
    # the zombie never overwrote the new owner: it re-claimed the partition (newer epoch) before writing again
    assert store.read(p).meta["token"] > new_owner
    replay, result = _replay(regime_tape)
    assert_same_state(checkpointed_engine(redis_server.url, group=group, topic=topic, config=regime_tape.config),
                      replay, _names(regime_tape.ticks))
    store.client.close()


# ---- outages ---------------------------------------------------------------------------------

def test_redis_down_pauses_consumption_and_nothing_is_lost_when_it_returns_empty(
        kafka_broker, redis_factory, regime_tape, unique_name, caplog):
    redis_srv = redis_factory()
    topic, group, alerts = unique_name("ticks"), unique_name("group"), unique_name("alerts")
    kafka_broker.create_topic(topic, 3)
    store = CheckpointStore(connect(redis_srv.url), group=group, topic=topic)
    first, second, third = _chunks(regime_tape.ticks, 3)
    svc = _Running(_config(kafka_broker, redis_srv.url, regime_tape, topic, group, alerts,
                           checkpoint_every_ticks=1000, max_uncheckpointed_ticks=5000))
    health = svc.service.health.registry.get_sample_value
    publish_ticks(kafka_broker.bootstrap, topic, first)
    wait_for(lambda: _all_checkpointed(kafka_broker, store, topic), timeout=60, what="the first third checkpointed")
    redis_srv.stop()
    with caplog.at_level(logging.WARNING, logger="consumers.service"):
        publish_ticks(kafka_broker.bootstrap, topic, second)
        wait_for(lambda: "pausing all partitions" in caplog.text, timeout=30, what="backpressure")
        lag = lambda: sum(health("tapewatch_consumer_lag_messages", {"topic": topic, "partition": str(p)}) or 0
                          for p in range(3))
        lag_paused = lag()
        publish_ticks(kafka_broker.bootstrap, topic, third)
        # the pause shows as lag (one message per tick): looked up from the broker, not only
        # taken from fetches, which a paused partition does not make
        wait_for(lambda: lag() >= lag_paused + len(third), timeout=15, what="the third part in the lag")
        processed = health("tapewatch_ticks_total")
        threading.Event().wait(1.5)
        assert health("tapewatch_ticks_total") == processed < len(regime_tape.ticks)   # paused
        assert health("tapewatch_checkpoint_failures_total") >= 1
        redis_srv.start()                    # no persistence: it comes back empty
        wait_for(lambda: _all_checkpointed(kafka_broker, store, topic), timeout=60, what="everything checkpointed")
    assert "the checkpoint store had lost its data" in caplog.text
    assert svc.stop() == 0
    assert health("tapewatch_ticks_total") == len(regime_tape.ticks)       # each tick counted once
    replay, result = _replay(regime_tape)
    assert_same_state(checkpointed_engine(redis_srv.url, group=group, topic=topic, config=regime_tape.config),
                      replay, _names(regime_tape.ticks))
    _assert_alerts_match_replay(transitions_in_topic(kafka_broker.bootstrap, alerts), result)
    store.client.close()


def test_redis_restarted_empty_under_idle_partitions_loses_nothing_in_a_rebalance(
        kafka_broker, redis_server, regime_tape, unique_name, caplog):
    """Redis comes back empty while nothing arrives (no write notices it); a second consumer joins:
    the partitions the first one gives up are written on the way, so the second one finds them."""
    topic, group, alerts = unique_name("ticks"), unique_name("group"), unique_name("alerts")
    kafka_broker.create_topic(topic, 4)
    store = CheckpointStore(connect(redis_server.url), group=group, topic=topic)
    # "latest": a partition without a checkpoint would be read on from its end, its state gone
    config = _config(kafka_broker, redis_server.url, regime_tape, topic, group, alerts, offset_reset_policy="latest")
    a = _Running(config)
    wait_for(lambda: len(a.service.partitions) == 4, timeout=30, what="the first consumer to own every partition")
    publish_ticks(kafka_broker.bootstrap, topic, regime_tape.ticks)
    wait_for(lambda: _all_checkpointed(kafka_broker, store, topic), timeout=60, what="the tape checkpointed")
    for key in store.client.scan_iter(match=f"*{group}*"):      # what a restart without persistence does
        store.client.delete(key)
    assert not store.read_all()
    caplog.clear()          # the first consumer's start found no checkpoints, rightly
    with caplog.at_level(logging.WARNING, logger="consumers.service"):
        b = _Running(config)
        wait_for(lambda: a.service.partitions and b.service.partitions
                 and len(a.service.partitions) + len(b.service.partitions) == 4,
                 timeout=60, what="two consumers sharing the partitions")
        assert a.stop() == 0 and b.stop() == 0
    assert "no checkpoint in Redis" not in caplog.text
    replay, _ = _replay(regime_tape)
    assert_same_state(checkpointed_engine(redis_server.url, group=group, topic=topic, config=regime_tape.config),
                      replay, _names(regime_tape.ticks))
    store.client.close()


def test_broker_restart_reconnects_and_resumes(broker_factory, redis_server, regime_tape, unique_name, caplog):
    broker = broker_factory()
    topic, group, alerts = unique_name("ticks"), unique_name("group"), unique_name("alerts")
    # Four partitions, as many as Tansu gives a topic it creates on a client's metadata request:
    # after the restart the service's own requests may create the topic before the test does.
    # With another count the test re-created it under the running consumer, a race that only
    # an in-memory broker has (see docs/recovery.md: it once hung the consumer in Tansu's join)
    broker.create_topic(topic, 4)
    store = CheckpointStore(connect(redis_server.url), group=group, topic=topic)
    first, second = _chunks(regime_tape.ticks, 2)
    svc = _Running(_config(broker, redis_server.url, regime_tape, topic, group, alerts))
    publish_ticks(broker.bootstrap, topic, first)
    wait_for(lambda: _all_checkpointed(broker, store, topic), timeout=60, what="the first half checkpointed")
    epochs = [int(store.client.get(store.keys(p)[0])) for p in range(4)]
    # Tansu keeps everything in memory: after the restart the topic, its records and the group are gone.
    broker.stop()
    broker.start()
    broker.create_topic(topic, 4)
    with caplog.at_level(logging.INFO, logger="consumers.service"):
        wait_for(lambda: all(int(store.client.get(store.keys(p)[0])) > e for p, e in enumerate(epochs)),
                 timeout=60, what="the consumer to rejoin and re-claim its partitions")
        publish_ticks(broker.bootstrap, topic, second)
        wait_for(lambda: _all_checkpointed(broker, store, topic), timeout=60, what="the second half checkpointed")
    assert "was deleted and re-created since the checkpoint" in caplog.text
    assert svc.stop() == 0
    replay, result = _replay(regime_tape)
    assert_same_state(checkpointed_engine(redis_server.url, group=group, topic=topic, config=regime_tape.config),
                      replay, _names(regime_tape.ticks))
    # the alerts of the first half were on the old broker; those of the second half are on the new one
    got = transitions_in_topic(broker.bootstrap, alerts)
    assert {d["id"] for d in got} <= {t.id for t in result.transitions}
    store.client.close()


@pytest.mark.parametrize("misses", [1, MISSING_PARTITION_REJOIN])
def test_a_partition_missing_from_the_offsets_answer_is_retried_then_rejoined(
        kafka_broker, redis_server, regime_tape, unique_name, caplog, monkeypatch, misses):
    """kafka-python 3.0 raises KeyError from ``beginning_offsets`` when a partition is missing
    from the broker's answer: the topic was re-created with fewer partitions between the
    assignment and the lookup (the broker-restart test above ended that way about one run in
    ten, and the service's thread died). Injected at the first ``misses`` lookups: the service
    logs it, keeps the partitions paused and retries; a partition still missing after
    ``MISSING_PARTITION_REJOIN`` lookups makes it leave the group and join again (Tansu answers
    the only member's rebalance with its old assignment, and the broker-restart test hung on
    that). Either way it then reads the whole tape exactly as replay does."""
    from kafka import KafkaConsumer

    real, calls = KafkaConsumer.beginning_offsets, []

    def missing(self, partitions, *args, **kw):
        calls.append(partitions)
        if len(calls) <= misses:
            raise KeyError(partitions[-1])
        return real(self, partitions, *args, **kw)

    monkeypatch.setattr(KafkaConsumer, "beginning_offsets", missing)
    topic, group, alerts = unique_name("ticks"), unique_name("group"), unique_name("alerts")
    kafka_broker.create_topic(topic, 3)
    store = CheckpointStore(connect(redis_server.url), group=group, topic=topic)
    with caplog.at_level(logging.WARNING, logger="consumers.service"):
        svc = _Running(_config(kafka_broker, redis_server.url, regime_tape, topic, group, alerts))
        publish_ticks(kafka_broker.bootstrap, topic, regime_tape.ticks)
        wait_for(lambda: _all_checkpointed(kafka_broker, store, topic), timeout=60, what="the tape checkpointed")
    assert len(calls) > misses and "the broker has no offsets for TopicPartition" in caplog.text
    rejoined = "leaving the group to get a new assignment" in caplog.text and "rejoining consumer group" in caplog.text
    assert rejoined == (misses >= MISSING_PARTITION_REJOIN)
    assert svc.thread.is_alive() and svc.stop() == 0
    replay, result = _replay(regime_tape)
    assert_same_state(checkpointed_engine(redis_server.url, group=group, topic=topic, config=regime_tape.config),
                      replay, _names(regime_tape.ticks))
    _assert_alerts_match_replay(transitions_in_topic(kafka_broker.bootstrap, alerts), result)
    store.client.close()


# ---- offsets that are no longer usable ------------------------------------------------------------

def test_a_checkpoint_of_a_vanished_topic_fails_or_resets_by_policy(kafka_broker, redis_server, regime_tape,
                                                                    unique_name, service_factory):
    topic, group, alerts = unique_name("ticks"), unique_name("group"), unique_name("alerts")
    kafka_broker.create_topic(topic, 2)
    head = regime_tape.ticks.select(slice(0, 4000))
    publish_ticks(kafka_broker.bootstrap, topic, head)
    args = ["--bootstrap-servers", kafka_broker.bootstrap, "--topic", topic, "--group-id", group,
            "--redis-url", redis_server.url, "--alerts-topic", alerts, "--config", str(regime_tape.config_path),
            "--metrics-port", "-1", "--session-timeout-ms", "3000", "--heartbeat-interval-ms", "1000",
            "--exit-when-idle", "1"]
    assert service_factory(args).wait(60) == 0
    # the records behind the checkpointed offsets disappear: the topic is deleted and re-created
    admin = kafka_broker.admin()
    admin.delete_topics([topic])
    admin.close()
    kafka_broker.create_topic(topic, 2)
    publish_ticks(kafka_broker.bootstrap, topic, head.select(slice(0, 100)))

    failing = service_factory(args + ["--offset-reset-policy", "fail"])
    assert failing.wait(60) == 2
    log = failing.log()
    assert "was deleted and re-created since the checkpoint" in log
    assert "not guessing where to start (--offset-reset-policy fail)" in log

    resetting = service_factory(args + ["--offset-reset-policy", "earliest"])
    assert resetting.wait(60) == 0, resetting.log_tail()
    assert "CRITICAL consumers.service:" in resetting.log()
    assert "resetting partition" in resetting.log()



def test_a_checkpoint_of_another_state_layout_stops_the_service_with_what_to_delete(
        kafka_broker, redis_server, regime_tape, unique_name, service_factory):
    """An upgrade that changes the engine's state layout (``LAYOUT_VERSION``) cannot read the old
    checkpoints: the service must stop and name the keys to delete, never start from a blank or
    misread state; once they are deleted it rebuilds the partition from the reset policy."""
    topic, group, alerts = unique_name("ticks"), unique_name("group"), unique_name("alerts")
    kafka_broker.create_topic(topic, 1)
    publish_ticks(kafka_broker.bootstrap, topic, regime_tape.ticks.select(slice(0, 3000)))
    args = ["--bootstrap-servers", kafka_broker.bootstrap, "--topic", topic, "--group-id", group,
            "--redis-url", redis_server.url, "--alerts-topic", alerts, "--config", str(regime_tape.config_path),
            "--metrics-port", "-1", "--session-timeout-ms", "3000", "--heartbeat-interval-ms", "1000",
            "--exit-when-idle", "1"]
    assert service_factory(args).wait(60) == 0
    store = CheckpointStore(connect(redis_server.url), group=group, topic=topic)
    client = connect(redis_server.url)
    epoch_key, state_key = store.keys(0)[:2]
    blob = client.get(state_key)
    assert blob[:4] == b"TWS" + bytes([K.LAYOUT_VERSION])
    client.set(state_key, b"TWS" + bytes([K.LAYOUT_VERSION - 1]) + blob[4:])      # written by the old version

    stopped = service_factory(args)
    assert stopped.wait(60) == 2
    log = stopped.log()
    assert f"the checkpoint of partition 0 cannot be restored: snapshot layout b'TWS' v{K.LAYOUT_VERSION - 1}" in log, log
    assert f"Delete the keys {', '.join(store.keys(0))}" in log

    client.delete(*store.keys(0))
    rebuilt = service_factory(args)
    assert rebuilt.wait(60) == 0, rebuilt.log_tail()
    assert client.get(state_key)[:4] == b"TWS" + bytes([K.LAYOUT_VERSION])

def _claim(offset, meta=None):
    return Claim(partition=4, token=7, state=b"", offset=offset, meta=meta or {})


def test_start_offset_uses_the_checkpoint_when_it_is_still_there(caplog):
    with caplog.at_level(logging.WARNING):
        assert start_offset(_claim(150, {"topic_id": "a"}), begin=100, end=900, topic_id="a", policy="fail",
                            topic="ticks", group="g") == 150
    assert caplog.text == ""


@pytest.mark.parametrize("policy, expected", [("earliest", 100), ("latest", 900)])
def test_start_offset_out_of_retention_resets_with_a_critical_line(policy, expected, caplog):
    with caplog.at_level(logging.WARNING):
        assert start_offset(_claim(50), begin=100, end=900, topic_id=None, policy=policy, topic="ticks",
                            group="g") == expected
    (record,) = caplog.records
    assert record.levelno == logging.CRITICAL
    assert ("the checkpointed offset 50 of partition 4 of topic 'ticks' (group 'g') is out of retention "
            "(earliest available: 100)") in record.getMessage()


def test_start_offset_out_of_retention_with_policy_fail_raises_what_to_do():
    with pytest.raises(ServiceError, match=r"out of retention \(earliest available: 100\); not guessing where to "
                                           r"start \(--offset-reset-policy fail\)\. Use --offset-reset-policy "
                                           r"earliest or latest"):
        start_offset(_claim(50), begin=100, end=900, topic_id=None, policy="fail", topic="ticks", group="g")


def test_start_offset_without_checkpoint_warns_and_follows_the_policy(caplog):
    with caplog.at_level(logging.WARNING):
        assert start_offset(_claim(None), begin=3, end=9, topic_id="a", policy="earliest", topic="t", group="g") == 3
    assert caplog.records[0].levelno == logging.WARNING and "no checkpoint in Redis" in caplog.text
    with pytest.raises(ServiceError, match="no checkpoint in Redis for partition 4"):
        start_offset(_claim(None), begin=3, end=9, topic_id="a", policy="fail", topic="t", group="g")
