"""Retention, DeleteRecords and compaction, observed through real clients."""
import struct
import time

from confluent_kafka import Consumer, TopicPartition

from helpers import consume_partition, create_topic, produce_all, producer
from kproto import Conn, kstr

FAST = {"log.retention.check.interval.ms": "200", "log.cleaner.backoff.ms": "200"}


def watermarks(bootstrap, topic, part=0):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "wm"})
    try:
        return c.get_watermark_offsets(TopicPartition(topic, part), timeout=10)
    finally:
        c.close()


def wait_for(pred, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.2)
    return pred()


def test_retention_by_size_deletes_old_segments(broker_factory):
    b = broker_factory(FAST).start()
    create_topic(b.bootstrap, "sized", config={"segment.bytes": "16384", "retention.bytes": "40000"})
    produce_all(producer(b.bootstrap, **{"batch.num.messages": 10}), "sized",
                [dict(value=b"%06d" % i + b"s" * 250) for i in range(1000)])
    lo = wait_for(lambda: watermarks(b.bootstrap, "sized")[0] > 0 and watermarks(b.bootstrap, "sized")[0])
    lo, hi = watermarks(b.bootstrap, "sized")
    assert hi == 1000 and 0 < lo < 1000
    got = consume_partition(b.bootstrap, "sized", 0, hi - lo, start=lo)
    assert got[0].offset() == lo and got[-1].offset() == 999
    # what is left fits roughly in retention.bytes plus the active segment
    assert (hi - lo) * 260 < 40000 + 2 * 16384 + 4096


def test_retention_by_time_uses_record_timestamps(broker_factory):
    b = broker_factory(FAST).start()
    create_topic(b.bootstrap, "timed", config={"segment.bytes": "16384", "retention.ms": "60000"})
    old = int(time.time() * 1000) - 3_600_000
    produce_all(producer(b.bootstrap, **{"batch.num.messages": 10}), "timed",
                [dict(value=b"o" * 250, timestamp=old) for i in range(500)])
    produce_all(producer(b.bootstrap), "timed", [dict(value=b"new-%d" % i) for i in range(10)])
    lo = wait_for(lambda: watermarks(b.bootstrap, "timed")[0] >= 400 and watermarks(b.bootstrap, "timed")[0])
    assert lo, "old segments were not deleted"
    lo, hi = watermarks(b.bootstrap, "timed")
    assert hi == 510
    got = consume_partition(b.bootstrap, "timed", 0, 10, start=500)
    assert [m.value() for m in got] == [b"new-%d" % i for i in range(10)]


def delete_records(bootstrap, topic, partition, offset):
    c = Conn(bootstrap)
    body = struct.pack(">i", 1) + kstr(topic) + struct.pack(">i", 1) + struct.pack(">iq", partition, offset)
    body += struct.pack(">i", 5000)
    c.request(21, 0, body)
    resp = c.recv_frame()
    c.close()
    # corr, throttle, [name, [partition, low_watermark, error]]
    off = 4 + 4 + 4
    ln = struct.unpack(">h", resp[off:off + 2])[0]
    off += 2 + ln + 4
    part, low, err = struct.unpack(">iqh", resp[off:off + 14])
    return err, low


def test_delete_records_moves_log_start(broker):
    create_topic(broker.bootstrap, "trim")
    produce_all(producer(broker.bootstrap), "trim", [dict(value=b"%d" % i) for i in range(100)])
    assert delete_records(broker.bootstrap, "trim", 0, 40) == (0, 40)
    assert watermarks(broker.bootstrap, "trim") == (40, 100)
    assert delete_records(broker.bootstrap, "trim", 0, 1000)[0] == 1  # OFFSET_OUT_OF_RANGE
    # a consumer asking for offset 0 is reset to the start
    got = consume_partition(broker.bootstrap, "trim", 0, 1, start=0, **{"auto.offset.reset": "earliest"})
    assert got[0].offset() == 40
    broker.restart()
    assert watermarks(broker.bootstrap, "trim") == (40, 100)


def test_compaction_keeps_latest_per_key(broker_factory):
    b = broker_factory(FAST).start()
    create_topic(b.bootstrap, "changelog", config={
        "cleanup.policy": "compact", "segment.bytes": "8192", "min.cleanable.dirty.ratio": "0.01",
        "delete.retention.ms": "0", "segment.ms": "1000"})
    p = producer(b.bootstrap, **{"batch.num.messages": 20})
    msgs = []
    for version in range(40):
        for k in range(10):
            msgs.append(dict(key=b"k%d" % k, value=b"k%d-v%02d" % (k, version) + b"c" * 60))
    msgs += [dict(key=b"k3", value=None), dict(key=b"k7", value=None)]  # tombstones
    produce_all(p, "changelog", msgs)
    # keyless records are refused on a compacted topic (INVALID_RECORD)
    import pytest
    with pytest.raises(AssertionError):
        produce_all(producer(b.bootstrap, retries=0), "changelog", [dict(value=b"no key")], timeout=20)
    time.sleep(1.5)  # let the active segment age past segment.ms, then roll it
    produce_all(p, "changelog", [dict(key=b"roll", value=b"roll")])

    def compacted():
        # done when every segment but the active one (holding "roll") is cleaned: one record per key
        lo, hi = watermarks(b.bootstrap, "changelog")
        got = consume_partition(b.bootstrap, "changelog", 0, hi - lo, start=lo, timeout=10)
        keys = [m.key() for m in got if m.key() != b"roll"]
        return got if len(keys) == len(set(keys)) else None

    got = wait_for(compacted, timeout=60)
    assert got, "the cleaner never compacted the log"
    latest = {}
    offsets = [m.offset() for m in got]
    assert offsets == sorted(offsets)
    for m in got:
        latest[m.key()] = m.value()
    for k in range(10):
        key = b"k%d" % k
        if k in (3, 7):
            assert latest.get(key) is None  # deleted (tombstone or gone)
        else:
            assert latest[key].startswith(b"k%d-v39" % k)
    assert len(got) <= 11  # 8 live keys (+ tombstones not yet dropped) + "roll"
