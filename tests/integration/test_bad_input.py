"""Malformed requests: the broker answers with the protocol's error or closes the
connection with a log line, keeps serving everyone else, and writes nothing bad."""
import struct

import pytest

from helpers import consume_partition, create_topic, produce_all, producer
from kproto import Conn, api_versions, kstr, produce_v3, record_batch


def still_serving(broker):
    c = Conn(broker.bootstrap)
    resp = api_versions(c)
    c.close()
    corr, err = struct.unpack(">ih", resp[:6])
    assert err == 0
    return True


def parse_produce_v3_error(resp):
    # corr, [topic: name, [partition, error, base_offset, log_append_time]], throttle
    off = 4
    n = struct.unpack(">i", resp[off:off + 4])[0]; off += 4
    assert n == 1
    ln = struct.unpack(">h", resp[off:off + 2])[0]; off += 2 + ln
    n = struct.unpack(">i", resp[off:off + 4])[0]; off += 4
    part, err, base = struct.unpack(">ihq", resp[off:off + 14])
    return err, base


@pytest.mark.parametrize("size", [0x7FFFFFFF, -1, -2147483648, 0, 200 * 1024 * 1024])
def test_absurd_frame_sizes_close_only_that_connection(broker, size):
    other = Conn(broker.bootstrap)
    bad = Conn(broker.bootstrap)
    bad.send_raw(struct.pack(">i", size) + b"\x00" * 16)
    assert bad.is_closed()
    assert struct.unpack(">ih", api_versions(other)[:6])[1] == 0
    other.close()
    assert "frame" in broker.log_text().lower() or "size" in broker.log_text().lower()


def test_truncated_and_garbage_requests(broker):
    cases = [
        struct.pack(">hhi", 3, 1, 7),                           # header cut before client id
        struct.pack(">hhih", 3, 1, 7, 100) + b"abc",            # client id longer than the frame
        struct.pack(">hhi", 3, 1, 7) + kstr("x") + struct.pack(">i", 0x7FFFFFFF),  # topic count absurd
        struct.pack(">hhi", 0, 3, 7) + kstr("x") + kstr(None) + struct.pack(">hii", 1, 1000, -5),  # negative count
        struct.pack(">hhi", 999, 0, 7) + kstr("x"),             # unknown API key
        struct.pack(">hhi", 0, 99, 7) + kstr("x"),              # unsupported version
        bytes(range(256)),                                      # noise
    ]
    for frame in cases:
        c = Conn(broker.bootstrap)
        c.send_raw(struct.pack(">i", len(frame)) + frame)
        assert c.is_closed(), frame[:16]
    assert still_serving(broker)


def test_api_versions_unsupported_version_gets_v0_answer(broker):
    c = Conn(broker.bootstrap)
    c.request(18, 99, b"")
    resp = c.recv_frame()
    corr, err, n = struct.unpack(">ihi", resp[:10])
    assert err == 35 and n > 10  # UNSUPPORTED_VERSION with the list of APIs
    keys = {struct.unpack(">hhh", resp[10 + 6 * i:16 + 6 * i])[0] for i in range(n)}
    assert {0, 1, 2, 3, 18} <= keys


def test_bad_batches_get_errors_and_nothing_is_written(broker):
    create_topic(broker.bootstrap, "guarded")
    good = record_batch([(b"k", b"v")])
    cases = {
        "bad crc": (record_batch([(b"k", b"v")], corrupt_crc=True), 2),                 # CORRUPT_MESSAGE
        "truncated": (good[:-3], 2),
        "bad lastOffsetDelta": (record_batch([(b"k", b"v")], last_offset_delta=5), 2),
        "unknown codec": (record_batch([(b"k", b"v")], attributes=7), 76),             # UNSUPPORTED_COMPRESSION_TYPE
        "bad gzip payload": (record_batch([], attributes=1, raw_records=b"not gzip at all", count=1), (2, 87)),
        "control batch": (record_batch([(b"k", b"v")], attributes=0x20), 87),          # INVALID_RECORD
    }
    c = Conn(broker.bootstrap)
    for name, (data, expect) in cases.items():
        c.request(0, 3, produce_v3("guarded", 0, data))
        err, base = parse_produce_v3_error(c.recv_frame())
        expect = expect if isinstance(expect, tuple) else (expect,)
        assert err in expect, (name, err)
        assert base == -1
    # the connection still works and a good batch lands at offset 0: nothing bad was written
    c.request(0, 3, produce_v3("guarded", 0, good))
    err, base = parse_produce_v3_error(c.recv_frame())
    assert (err, base) == (0, 0)
    c.close()
    got = consume_partition(broker.bootstrap, "guarded", 0, 1)
    assert got[0].value() == b"v"
    broker.restart()
    p = producer(broker.bootstrap)
    produce_all(p, "guarded", [dict(value=b"after restart")])
    got = consume_partition(broker.bootstrap, "guarded", 0, 2)
    assert [m.offset() for m in got] == [0, 1]


def test_many_bad_clients_do_not_disturb_a_good_one(broker):
    create_topic(broker.bootstrap, "steady")
    p = producer(broker.bootstrap)
    for round_ in range(20):
        c = Conn(broker.bootstrap)
        c.send_raw(struct.pack(">i", 64) + bytes([round_]) * 64)
        c.is_closed(1.0)
        produce_all(p, "steady", [dict(value=b"%d" % round_)])
    got = consume_partition(broker.bootstrap, "steady", 0, 20)
    assert [m.value() for m in got] == [b"%d" % i for i in range(20)]


def test_fetch_error_is_answered_without_waiting(broker):
    """A Fetch whose partition has an error (offset out of range) is answered at once, not after MaxWaitMs."""
    import time
    create_topic(broker.bootstrap, "ranged")
    produce_all(producer(broker.bootstrap), "ranged", [dict(value=b"x")])
    c = Conn(broker.bootstrap)
    # Fetch v4: replica, max_wait 5000 ms, min_bytes 1, max_bytes, isolation, [topic [partition offset max]]
    body = struct.pack(">iiiib", -1, 5000, 1, 1 << 20, 0) + struct.pack(">i", 1) + kstr("ranged")
    body += struct.pack(">i", 1) + struct.pack(">iqi", 0, 1000, 1 << 20)
    t0 = time.time()
    c.request(1, 4, body)
    resp = c.recv_frame()
    elapsed = time.time() - t0
    c.close()
    # corr, throttle, [topic, [partition, error ...]]
    off = 4 + 4 + 4
    ln = struct.unpack(">h", resp[off:off + 2])[0]
    off += 2 + ln + 4
    part, err = struct.unpack(">ih", resp[off:off + 6])
    assert err == 1  # OFFSET_OUT_OF_RANGE
    assert elapsed < 2.0
