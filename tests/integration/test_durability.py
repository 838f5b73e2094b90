"""Storage engine under faults, with a real broker and real clients: kill -9 while
acks=all producers write (also with preallocated segments), torn and garbled segment
tails, damaged indexes, a full disk."""
import glob
import os
import random
import struct
import subprocess
import threading
import time

import pytest
from confluent_kafka import Producer

from helpers import consume_partition, create_topic, produce_all, producer

SEED = int(os.environ.get("RUNNEL_TEST_SEED", "1234"))


class AckedWriter:
    """Produces unique values in a background thread and records what was acknowledged."""

    def __init__(self, bootstrap, topic, tag):
        self.p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
                           "linger.ms": 1, "message.timeout.ms": 120000, "reconnect.backoff.max.ms": 200,
                           "retry.backoff.ms": 50})
        self.topic = topic
        self.tag = tag
        self.acked = []  # (partition, offset, value)
        self.errors = []
        self.stop = threading.Event()
        self.sent = 0
        self.t = threading.Thread(target=self.run, daemon=True)

    def cb(self, err, msg):
        if err:
            self.errors.append(str(err))
        else:
            self.acked.append((msg.partition(), msg.offset(), msg.value()))

    def run(self):
        i = 0
        while not self.stop.is_set() and i < 200_000:
            try:
                self.p.produce(self.topic, value=b"%s-%08d" % (self.tag, i), key=b"%d" % (i % 7), on_delivery=self.cb)
                i += 1
                self.sent = i
            except BufferError:
                pass
            self.p.poll(0 if i % 100 else 0.001)

    def start(self):
        self.t.start()
        return self

    def finish(self, timeout=120):
        self.stop.set()
        self.t.join(30)
        left = self.p.flush(timeout)
        assert left == 0, "%d messages never delivered" % left


def check_log(bootstrap, topic, partitions, acked):
    """Every acknowledged message is present exactly once, at its offset, in order."""
    by_part = {}
    for part in range(partitions):
        hw_msgs = []
        # read to the end of the partition
        from confluent_kafka import Consumer, TopicPartition
        c = Consumer({"bootstrap.servers": bootstrap, "group.id": "check"})
        lo, hi = c.get_watermark_offsets(TopicPartition(topic, part), timeout=20)
        c.close()
        if hi > lo:
            hw_msgs = consume_partition(bootstrap, topic, part, hi - lo, start=lo, timeout=180)
        assert len(hw_msgs) == hi - lo
        by_part[part] = {m.offset(): m.value() for m in hw_msgs}
        values = [m.value() for m in hw_msgs]
        assert len(values) == len(set(values)), "duplicate values in partition %d" % part
        # producer order is kept within a partition
        seqs = [v for v in values]
        assert seqs == sorted(seqs), "out of order in partition %d" % part
    for part, off, val in acked:
        assert by_part[part].get(off) == val, "acked %r at %d/%d missing or different" % (val, part, off)


def test_kill9_during_acks_all_produce_loses_nothing(broker):
    rnd = random.Random(SEED)
    create_topic(broker.bootstrap, "crash", partitions=3)
    acked = []
    for round_ in range(6):
        w = AckedWriter(broker.bootstrap, "crash", b"r%02d" % round_).start()
        time.sleep(rnd.uniform(0.3, 1.5))
        broker.kill9()
        broker.start()
        w.finish()
        assert not w.errors, w.errors[:5]
        assert len(w.acked) > 0
        acked += w.acked
    check_log(broker.bootstrap, "crash", 3, acked)
    assert "unclean shutdown" in broker.log_text() or "recover" in broker.log_text().lower()


def segment_files(data_dir, topic, part, ext):
    return sorted(glob.glob(os.path.join(data_dir, "%s-%d" % (topic, part), "*" + ext)))


def batches_end(path):
    """Position after the last batch of a segment file: where a zero header (a
    preallocated tail) or the file's end begins."""
    with open(path, "rb") as f:
        data = f.read()
    pos = 0
    while pos + 12 <= len(data):
        base, length = struct.unpack(">qi", data[pos:pos + 12])
        if length <= 0 or pos + 12 + length > len(data):
            break
        pos += 12 + length
    return pos, data


def test_torn_and_garbled_tails_keep_every_intact_batch(broker_factory):
    b = broker_factory({"log.segment.bytes": "65536"}).start()
    create_topic(b.bootstrap, "torn")
    p = producer(b.bootstrap, **{"batch.num.messages": 10})
    produce_all(p, "torn", [dict(value=b"%06d" % i + b"x" * 200) for i in range(1000)])
    b.kill9()
    logs = segment_files(b.data_dir, "torn", 0, ".log")
    assert len(logs) > 2
    last = logs[-1]
    size, _ = batches_end(last)  # the file may go on with preallocated zeros
    # tear the last batch in half, and garble bytes in the one before it
    with open(last, "r+b") as f:
        f.truncate(size - 100)
        f.seek(max(0, size - 400))
        f.write(b"\xff" * 8)
    b.start()
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": "x"})
    lo, hi = c.get_watermark_offsets(TopicPartition("torn", 0), timeout=10)
    c.close()
    assert lo == 0 and 900 <= hi < 1000  # the damaged tail is cut at a batch boundary
    got = consume_partition(b.bootstrap, "torn", 0, hi)
    assert [m.value()[:6] for m in got] == [b"%06d" % i for i in range(hi)]
    # appends continue right after the intact prefix
    produce_all(producer(b.bootstrap), "torn", [dict(value=b"next")])
    got = consume_partition(b.bootstrap, "torn", 0, 1, start=hi)
    assert got[0].offset() == hi and got[0].value() == b"next"


def test_kill9_with_preallocated_segment_restarts_with_every_acked_message(broker_factory):
    b = broker_factory({"log.segment.bytes": str(4 << 20)}).start()  # log.preallocate is on by default
    create_topic(b.bootstrap, "pre", partitions=2)
    acked = []
    for round_ in range(3):
        w = AckedWriter(b.bootstrap, "pre", b"p%02d" % round_).start()
        deadline = time.time() + 20
        while len(w.acked) < 2000 and time.time() < deadline:
            time.sleep(0.05)
        # the active segments carry written zeros past their last batch
        tails = 0
        for part in range(2):
            last = segment_files(b.data_dir, "pre", part, ".log")[-1]
            end, data = batches_end(last)
            if len(data) > end:
                assert data[end:] == bytes(len(data) - end), "the tail is not all zeros"
                tails += 1
        assert tails > 0, "no preallocated segment to crash with"
        b.kill9()
        b.start()
        w.finish()
        assert not w.errors, w.errors[:5]
        acked += w.acked
    check_log(b.bootstrap, "pre", 2, acked)
    text = b.log_text()
    assert "preallocated bytes" in text  # recovery cut the zero tail off ...
    assert "truncating" not in text  # ... and found nothing damaged
    # a clean stop trims every segment to its batches
    b.stop()
    for part in range(2):
        for path in segment_files(b.data_dir, "pre", part, ".log"):
            end, data = batches_end(path)
            assert end == len(data), path


def test_damaged_indexes_are_rebuilt(broker_factory):
    b = broker_factory({"log.segment.bytes": "65536", "log.index.interval.bytes": "512"}).start()
    create_topic(b.bootstrap, "idx")
    p = producer(b.bootstrap, **{"batch.num.messages": 5})
    produce_all(p, "idx", [dict(value=b"%06d" % i + b"y" * 300) for i in range(600)])
    b.kill9()
    idx = segment_files(b.data_dir, "idx", 0, ".index")
    tidx = segment_files(b.data_dir, "idx", 0, ".timeindex")
    assert idx and tidx
    with open(idx[0], "r+b") as f:  # garbage in the first index
        f.write(os.urandom(64))
    os.unlink(idx[-1])  # the active segment's index is gone
    with open(tidx[0], "r+b") as f:
        f.truncate(5)  # not a whole entry
    b.start()
    for start in (0, 137, 321, 599):
        got = consume_partition(b.bootstrap, "idx", 0, 1, start=start)
        assert got[0].offset() == start and got[0].value()[:6] == b"%06d" % start


def can_mount_tmpfs(path):
    os.makedirs(path, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", path], capture_output=True)
    return r.returncode == 0


def test_full_disk_gives_clean_errors_and_recovers(broker_factory, tmp_path):
    mnt = str(tmp_path / "small")
    if not can_mount_tmpfs(mnt):
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        b = broker_factory({"log.dir.min.free.bytes": str(1 << 20), "log.segment.bytes": str(1 << 20)})
        b.data_dir = os.path.join(mnt, "data")
        b.start()
        create_topic(b.bootstrap, "full")
        # most of the space taken by a file we can delete later
        filler = os.path.join(mnt, "filler")
        with open(filler, "wb") as f:
            f.write(b"\0" * (16 << 20))
        p = Producer({"bootstrap.servers": b.bootstrap, "acks": "all", "message.timeout.ms": 5000,
                      "linger.ms": 5, "retries": 0})
        acked, errors = [], []

        def cb(err, msg):
            (errors if err else acked).append(msg.value() if not err else str(err))

        for i in range(40_000):  # ~8 MB: more than fits
            try:
                p.produce("full", value=b"%08d" % i + b"z" * 192, on_delivery=cb)
            except BufferError:
                p.poll(0.05)
            p.poll(0)
        p.flush(60)
        assert errors, "the disk never filled"
        assert acked, "nothing was written before the disk filled"
        assert any("KAFKA_STORAGE_ERROR" in e or "storage" in e.lower() for e in errors), errors[:3]
        assert b.proc.poll() is None, "broker died on a full disk"
        # reads keep working: every acked message is there
        got = consume_partition(b.bootstrap, "full", 0, len(acked))
        assert [m.value() for m in got] == acked
        # space returns: appends resume
        os.unlink(filler)
        time.sleep(0.5)
        produce_all(producer(b.bootstrap, acks="all"), "full", [dict(value=b"resumed")])
        got = consume_partition(b.bootstrap, "full", 0, 1, start=len(acked))
        assert got[0].value() == b"resumed"
        b.stop()
    finally:
        subprocess.run(["umount", "-l", mnt], capture_output=True)
