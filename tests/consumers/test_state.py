"""The Redis checkpoint store against a real redis-server: atomic writes, fencing, key layout."""
from __future__ import annotations

import orjson
import pytest
from redis.crc import key_slot

from consumers.state import CheckpointStore, WriteResult, connect
from signals.errors import ConfigError

pytestmark = pytest.mark.integration


@pytest.fixture
def store(redis_server, unique_name):
    s = CheckpointStore(connect(redis_server.url), group=unique_name("g"), topic="ticks")
    yield s
    s.client.close()


def test_claim_of_a_new_partition_has_no_checkpoint_and_bumps_the_epoch(store):
    first = store.claim(0)
    assert (first.token, first.state, first.offset, dict(first.meta)) == (1, None, None, {})
    assert store.claim(0).token == 2
    assert store.claim(1).token == 1          # epochs are per partition
    assert store.read(0) is None


def test_write_then_claim_returns_state_offset_and_meta(store):
    token = store.claim(3).token
    assert store.write(3, token, b"\x00state\xff", 1234, {"topic_id": "abc"}) is WriteResult.OK
    claim = store.claim(3)
    assert (claim.state, claim.offset, claim.meta["topic_id"], claim.meta["token"]) == (b"\x00state\xff", 1234, "abc", token)
    assert claim.token == token + 1
    ckpt = store.read(3)
    assert (ckpt.state, ckpt.offset, ckpt.epoch) == (b"\x00state\xff", 1234, token + 1)


def test_zombie_writer_is_fenced_and_the_new_owners_state_stays(store, redis_server):
    zombie = store.claim(0).token
    assert store.write(0, zombie, b"zombie-1", 10) is WriteResult.OK
    # the partition moves to another consumer (a second store, as in another process)
    other = CheckpointStore(connect(redis_server.url), group=store.group, topic=store.topic)
    owner = other.claim(0).token
    assert owner > zombie
    assert other.write(0, owner, b"owner", 20) is WriteResult.OK
    # the old owner wakes up and tries to checkpoint: refused, nothing changes
    assert store.write(0, zombie, b"zombie-2", 30) is WriteResult.FENCED
    assert store.write_many({0: (zombie, b"zombie-3", 40, {}), 1: (store.claim(1).token, b"p1", 5, {})}) == {
        0: WriteResult.FENCED, 1: WriteResult.OK}
    ckpt = store.read(0)
    assert (ckpt.state, ckpt.offset, ckpt.epoch, ckpt.meta["token"]) == (b"owner", 20, owner, owner)
    other.client.close()


def test_write_after_the_store_lost_its_data_says_so(store):
    token = store.claim(5).token
    assert store.write(5, token, b"a", 1) is WriteResult.OK
    store.client.delete(*store.keys(5))      # as after a restart of a Redis without persistence
    assert store.write(5, token, b"b", 2) is WriteResult.STORE_RESET
    assert store.write(5, token, b"c", 3) is WriteResult.OK
    assert store.read(5).state == b"c"


def test_keys_of_a_partition_share_one_cluster_slot_and_partitions_are_listed(store, redis_server, unique_name):
    for p in (0, 7, 12):
        keys = store.keys(p)
        assert len({key_slot(k.encode()) for k in keys}) == 1
        assert all(k.startswith(f"tapewatch:{{{store.group}:ticks:{p}}}:") for k in keys)
        store.write(p, store.claim(p).token, b"s", p)
    store.claim(20)                          # claimed, never written: no checkpoint
    assert store.partitions() == [0, 7, 12]
    assert [c.offset for c in store.read_all()] == [0, 7, 12]
    other = CheckpointStore(store.client, group=unique_name("g"), topic="ticks")
    assert other.partitions() == []
    assert store.client.ttl(store.keys(0)[1]) == -1          # no TTL on state


def test_meta_is_json_with_time_and_token(store):
    token = store.claim(0).token
    store.write(0, token, b"s", 1, {"instruments": 3})
    meta = orjson.loads(store.client.get(store.keys(0)[3]))
    assert meta["instruments"] == 3 and meta["token"] == token and meta["time"] > 1.7e9


def test_bad_settings_fail_with_what_to_fix():
    with pytest.raises(ConfigError, match="must look like redis://"):
        connect("localhost:6379")
    with pytest.raises(ConfigError, match=r"group id 'a\{b' must not contain"):
        CheckpointStore(connect("redis://127.0.0.1:1/0"), group="a{b", topic="ticks")
    with pytest.raises(ValueError, match="next offset of partition 0 must be >= 0"):
        CheckpointStore(connect("redis://127.0.0.1:1/0"), group="g", topic="t").write(0, 1, b"", -1)
