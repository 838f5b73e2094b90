"""Transactions with confluent-kafka (librdkafka) against the real broker:
commit/abort across partitions, read_committed vs read_uncommitted, fencing."""
import time

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition

from group_helpers import wait_for
from helpers import create_topic, java_hash


def txn_producer(bootstrap, txn_id, **conf):
    c = {"bootstrap.servers": bootstrap, "transactional.id": txn_id, "linger.ms": 5,
         "transaction.timeout.ms": 60000}
    c.update(conf)
    return Producer(c)


def read_all(bootstrap, topic, partitions, isolation, expect, settle=1.5, timeout=60):
    """Every message of the topic's partitions (by assignment), until `expect` arrived and
    either the consumer's position reached every partition's end as the broker reports it for
    this isolation level (ListOffsets: the high watermark, or the last stable offset for
    read_committed), or nothing more came for `settle` seconds. Returns {partition: [value, ...]}."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "txn-reader", "enable.auto.commit": False,
                  "isolation.level": isolation, "enable.partition.eof": False})
    tps = [TopicPartition(topic, p) for p in range(partitions)]
    c.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    out = {p: [] for p in range(partitions)}
    n, deadline, quiet_since = 0, time.time() + timeout, None

    def at_the_end():
        ends = [c.get_watermark_offsets(tp, timeout=10, cached=False)[1] for tp in tps]
        return all(tp.offset >= end or end == 0 for tp, end in zip(c.position(tps), ends))

    try:
        while time.time() < deadline:
            m = c.poll(0.2)
            if m is None:
                if n >= expect:
                    quiet_since = quiet_since or time.time()
                    if time.time() - quiet_since > settle or at_the_end():
                        break
                continue
            assert m.error() is None, m.error()
            out[m.partition()].append(m.value().decode())
            n += 1
            quiet_since = None
    finally:
        c.close()
    return out


def test_commit_and_abort_across_three_partitions(broker):
    bs = broker.bootstrap
    create_topic(bs, "tx3", partitions=3)
    p = txn_producer(bs, "tx-commit-abort")
    p.init_transactions(30)
    committed = {0: [], 1: [], 2: []}
    everything = {0: [], 1: [], 2: []}
    for t in range(8):
        p.begin_transaction()
        for part in range(3):
            for k in range(25):
                v = "t%d-p%d-%d" % (t, part, k)
                p.produce("tx3", value=v, partition=part)
                everything[part].append(v)
        if t % 3 == 1:
            p.flush(30)  # on the broker before the abort (abort purges what is still queued)
            p.abort_transaction(30)
        else:
            p.commit_transaction(30)
            for part in range(3):
                committed[part].extend(v for v in everything[part] if v.startswith("t%d-" % t))
    p.flush(10)
    ncommitted = sum(len(v) for v in committed.values())
    got = read_all(bs, "tx3", 3, "read_committed", ncommitted)
    assert got == committed
    got = read_all(bs, "tx3", 3, "read_uncommitted", 8 * 75)
    assert got == everything


def test_open_transaction_holds_read_committed_back(broker):
    bs = broker.bootstrap
    create_topic(bs, "txopen", partitions=1)
    p = txn_producer(bs, "tx-open")
    p.init_transactions(30)
    p.begin_transaction()
    for k in range(10):
        p.produce("txopen", value="a%d" % k, partition=0)
    p.commit_transaction(30)
    p.begin_transaction()
    for k in range(10):
        p.produce("txopen", value="b%d" % k, partition=0)
    p.flush(10)  # delivered, not committed
    got = read_all(bs, "txopen", 1, "read_committed", 10, settle=1.0)
    assert got[0] == ["a%d" % k for k in range(10)]
    got = read_all(bs, "txopen", 1, "read_uncommitted", 20, settle=0.5)
    assert len(got[0]) == 20
    p.commit_transaction(30)
    got = read_all(bs, "txopen", 1, "read_committed", 20, settle=0.5)
    assert got[0] == ["a%d" % k for k in range(10)] + ["b%d" % k for k in range(10)]


def test_second_producer_fences_the_first(broker):
    bs = broker.bootstrap
    create_topic(bs, "txfence", partitions=1)
    p1 = txn_producer(bs, "tx-fence")
    p1.init_transactions(30)
    p1.begin_transaction()
    p1.produce("txfence", value="zombie", partition=0)
    p1.flush(10)
    p2 = txn_producer(bs, "tx-fence")
    p2.init_transactions(30)  # bumps the epoch and aborts p1's open transaction
    with pytest.raises(KafkaException) as ei:
        p1.commit_transaction(30)
    err = ei.value.args[0]
    assert err.fatal() or err.code() in (KafkaError._FENCED, KafkaError.PRODUCER_FENCED,
                                         KafkaError.INVALID_PRODUCER_EPOCH), err
    p2.begin_transaction()
    p2.produce("txfence", value="live", partition=0)
    p2.commit_transaction(30)
    got = read_all(bs, "txfence", 1, "read_committed", 1)
    assert got[0] == ["live"]
    got = read_all(bs, "txfence", 1, "read_uncommitted", 2)
    assert got[0] == ["zombie", "live"]


def test_transaction_timeout_above_max_is_refused(broker):
    p = txn_producer(broker.bootstrap, "tx-too-long", **{"transaction.timeout.ms": 900001})
    with pytest.raises(KafkaException) as ei:
        p.init_transactions(10)
    assert ei.value.args[0].code() == KafkaError.INVALID_TRANSACTION_TIMEOUT


def test_transaction_left_open_past_its_timeout_is_aborted(broker):
    bs = broker.bootstrap
    create_topic(bs, "txtimeout", partitions=2)
    p = txn_producer(bs, "tx-timeout", **{"transaction.timeout.ms": 2000})
    p.init_transactions(30)
    p.begin_transaction()
    for k in range(10):
        p.produce("txtimeout", value="stale%d" % k, partition=k % 2)
    p.flush(10)
    wait_for(lambda: "tx-timeout: open for more than transaction.timeout.ms" in broker.log_text(), timeout=20,
             what="the coordinator to abort it (checked every second)")
    # read_committed is no longer held back, and the aborted records are dropped
    other = txn_producer(bs, "tx-timeout-other")
    other.init_transactions(30)
    other.begin_transaction()
    other.produce("txtimeout", value="fresh", partition=0)
    other.commit_transaction(30)
    got = read_all(bs, "txtimeout", 2, "read_committed", 1)
    assert got == {0: ["fresh"], 1: []}
    got = read_all(bs, "txtimeout", 2, "read_uncommitted", 11)
    assert sorted(got[0] + got[1]) == sorted(["stale%d" % k for k in range(10)] + ["fresh"])
    # the timed-out producer was fenced by the abort's epoch bump
    with pytest.raises(KafkaException):
        p.commit_transaction(10)


def test_idle_transactional_id_expires(broker):
    broker.stop()
    broker.overrides["transactional.id.expiration.ms"] = "1500"
    broker.start()
    bs = broker.bootstrap
    create_topic(bs, "txexpire", partitions=1)
    p = txn_producer(bs, "tx-expire")
    p.init_transactions(30)
    p.begin_transaction()
    p.produce("txexpire", value="x", partition=0)
    p.commit_transaction(30)
    wait_for(lambda: "tx-expire: idle for more than transactional.id.expiration.ms" in broker.log_text(),
             timeout=20, what="the idle id to expire")


def consume_transform_produce(bs, src, dst, group, txn_id, total, batch=500, deadline_s=240):
    """Reads `src` in group `group`, writes upper-cased copies to `dst` and the consumed
    offsets in the same transaction. Returns the number of messages processed."""
    c = Consumer({"bootstrap.servers": bs, "group.id": group, "enable.auto.commit": False,
                  "isolation.level": "read_committed", "auto.offset.reset": "earliest"})
    c.subscribe([src])
    p = txn_producer(bs, txn_id)
    p.init_transactions(30)
    done, deadline = 0, time.time() + deadline_s
    try:
        while done < total and time.time() < deadline:
            msgs = c.consume(batch, 1.0)
            msgs = [m for m in msgs if m.error() is None]
            if not msgs:
                continue
            p.begin_transaction()
            for m in msgs:
                p.produce(dst, key=m.key(), value=m.value().upper(), partition=m.partition())
            p.send_offsets_to_transaction(c.position(c.assignment()), c.consumer_group_metadata(), 30)
            p.commit_transaction(30)
            done += len(msgs)
    finally:
        c.close()
    return done


def test_consume_transform_produce_with_send_offsets(broker):
    from helpers import producer, produce_all
    bs = broker.bootstrap
    create_topic(bs, "ctp-in", partitions=3)
    create_topic(bs, "ctp-out", partitions=3)
    n = 3000
    produce_all(producer(bs), "ctp-in", [dict(key=b"%d" % i, value=b"m%d" % i, partition=i % 3) for i in range(n)])
    # first run stops after about half, its offsets committed with its transactions
    done = consume_transform_produce(bs, "ctp-in", "ctp-out", "ctp-group", "ctp-txn", n // 2)
    assert done >= n // 2
    # a second run (same group, same transactional id) continues from the committed offsets
    consume_transform_produce(bs, "ctp-in", "ctp-out", "ctp-group", "ctp-txn", n - done)
    got = read_all(bs, "ctp-out", 3, "read_committed", n)
    values = sorted(v for vs in got.values() for v in vs)
    assert values == sorted("M%d" % i for i in range(n))


def test_offsets_sent_with_a_transaction_are_unstable_until_it_commits(broker):
    bs = broker.bootstrap
    create_topic(bs, "txrs", partitions=1)
    p = txn_producer(bs, "tx-rs")
    p.init_transactions(30)
    # a consumer of the group, only for its group metadata (no subscription, so no rebalance)
    meta_c = Consumer({"bootstrap.servers": bs, "group.id": "rs-g", "enable.auto.commit": False})
    p.begin_transaction()
    p.produce("txrs", value="x", partition=0)
    p.send_offsets_to_transaction([TopicPartition("txrs", 0, 5)], meta_c.consumer_group_metadata(), 30)
    rc = Consumer({"bootstrap.servers": bs, "group.id": "rs-g", "enable.auto.commit": False,
                   "isolation.level": "read_committed"})
    ru = Consumer({"bootstrap.servers": bs, "group.id": "rs-g", "enable.auto.commit": False,
                   "isolation.level": "read_uncommitted"})
    try:
        # read_uncommitted does not ask for stable offsets: the committed offset is still none
        assert ru.committed([TopicPartition("txrs", 0)], timeout=10)[0].offset < 0
        # read_committed asks RequireStable: the pending offset makes it retry until it times out
        with pytest.raises(KafkaException):
            rc.committed([TopicPartition("txrs", 0)], timeout=3)
        p.commit_transaction(30)
        assert rc.committed([TopicPartition("txrs", 0)], timeout=10)[0].offset == 5
    finally:
        rc.close()
        ru.close()
        meta_c.close()


def open_transaction(bs, topic, txn_id, values, partitions=2, **conf):
    """A transactional producer with an open transaction holding `values` (written, round-robin)."""
    create_topic(bs, topic, partitions=partitions)
    p = txn_producer(bs, txn_id, **conf)
    p.init_transactions(30)
    p.begin_transaction()
    for k, v in enumerate(values):
        p.produce(topic, value=v, partition=k % partitions)
    p.flush(30)
    return p


def committed_values(bs, topic, partitions, expect, isolation="read_committed"):
    got = read_all(bs, topic, partitions, isolation, expect)
    return sorted(v for vs in got.values() for v in vs)


@pytest.mark.parametrize("how", ["clean", "kill9"])
def test_coordinator_state_survives_restart(broker, how):
    """The transactional id's producer id and epoch come back from __transaction_state: the
    producer goes on committing after the restart, and a newer instance still fences it."""
    bs = broker.bootstrap
    create_topic(bs, "txsurv", partitions=2)
    p = txn_producer(bs, "tx-surv")
    p.init_transactions(30)
    p.begin_transaction()
    p.produce("txsurv", value="before", partition=0)
    p.commit_transaction(30)
    if how == "clean":
        broker.restart()
    else:
        broker.kill9()
        broker.start()
    p.begin_transaction()
    p.produce("txsurv", value="after", partition=1)
    p.commit_transaction(60)
    assert "loaded 1 transactional id(s)" in broker.log_text()
    assert committed_values(bs, "txsurv", 2, 2) == ["after", "before"]
    p2 = txn_producer(bs, "tx-surv")
    p2.init_transactions(30)
    p.begin_transaction()
    p.produce("txsurv", value="zombie", partition=0)
    with pytest.raises(KafkaException) as ei:
        p.commit_transaction(30)
    assert ei.value.args[0].code() in (KafkaError._FENCED, KafkaError.PRODUCER_FENCED, KafkaError.INVALID_PRODUCER_EPOCH)


def restart(broker, how):
    if how == "clean":
        broker.restart()
    else:
        broker.kill9()
        broker.start()


@pytest.mark.parametrize("how", ["clean", "kill9"])
def test_read_committed_after_restart_sees_no_aborted_data(broker, how):
    """Committed, aborted and still-open transactions across a restart: the partitions rebuild
    their aborted list (.txnindex) and open transactions (producer snapshot, or a scan after
    kill -9), so read_committed skips the aborted data and stops at the open one."""
    bs = broker.bootstrap
    p = open_transaction(bs, "txrc", "tx-rc", ["c%d" % k for k in range(6)])
    p.commit_transaction(30)
    p.begin_transaction()
    for k in range(6):
        p.produce("txrc", value="a%d" % k, partition=k % 2)
    p.flush(30)  # written, then aborted (unflushed messages would just be purged)
    p.abort_transaction(30)
    p.begin_transaction()
    for k in range(4):
        p.produce("txrc", value="o%d" % k, partition=k % 2)
    p.flush(30)
    restart(broker, how)
    # the open transaction holds read_committed back; nothing aborted shows
    assert committed_values(bs, "txrc", 2, 6) == sorted("c%d" % k for k in range(6))
    assert len(committed_values(bs, "txrc", 2, 16, "read_uncommitted")) == 16
    p.commit_transaction(60)  # the same producer finishes its transaction after the restart
    want = sorted(["c%d" % k for k in range(6)] + ["o%d" % k for k in range(4)])
    assert committed_values(bs, "txrc", 2, 10) == want
    restart(broker, how)  # and once more, now with everything closed
    assert committed_values(bs, "txrc", 2, 10) == want


def read_varint(b, pos):
    shift, v = 0, 0
    while True:
        c = b[pos]
        pos += 1
        v |= (c & 0x7F) << shift
        shift += 7
        if not c & 0x80:
            return (v >> 1) ^ -(v & 1), pos


def log_records(path):
    """(next offset, end position, [(offset, key, value)]) of a segment file, records
    uncompressed; the end is where the batches stop (segments may be preallocated)."""
    import struct
    data = open(path, "rb").read()
    pos, nxt, out = 0, 0, []
    while pos + 61 <= len(data):
        base, blen = struct.unpack(">qi", data[pos:pos + 12])
        if blen <= 0:
            break
        lod = struct.unpack(">i", data[pos + 23:pos + 27])[0]
        count = struct.unpack(">i", data[pos + 57:pos + 61])[0]
        r = pos + 61
        for _ in range(count):
            _, r = read_varint(data, r)
            r += 1
            _, r = read_varint(data, r)
            od, r = read_varint(data, r)
            kl, r = read_varint(data, r)
            key = data[r:r + kl] if kl >= 0 else None
            r += max(kl, 0)
            vl, r = read_varint(data, r)
            val = data[r:r + vl] if vl >= 0 else None
            r += max(vl, 0)
            hc, r = read_varint(data, r)
            assert hc == 0
            out.append((base + od, key, val))
        nxt = base + lod + 1
        pos += 12 + blen
    return nxt, pos, out


@pytest.mark.parametrize("outcome", ["commit", "abort"])
def test_prepare_state_at_crash_is_finished_after_restart(broker, outcome):
    """A crash right after PrepareCommit/PrepareAbort reached __transaction_state (before any
    marker): simulated by appending that record to the partition while the broker is down, as
    the coordinator would have. The restarted coordinator writes the markers and completes it."""
    import glob
    import os
    import struct
    from kproto import kstr, record_batch
    bs = broker.bootstrap
    open_transaction(bs, "txprep", "tx-prep", ["v%d" % k for k in range(8)])
    broker.kill9()
    part = abs(java_hash("tx-prep")) % 50
    seg = sorted(glob.glob(os.path.join(broker.data_dir, "__transaction_state-%d" % part, "*.log")))[-1]
    end, end_pos, recs = log_records(seg)
    key = struct.pack(">h", 0) + kstr("tx-prep")
    ongoing = [v for (_, k, v) in recs if k == key][-1]
    version, pid, epoch, timeout, state = struct.unpack(">hqhib", ongoing[:17])
    assert (version, state) == (0, 1)  # v0, Ongoing, both partitions in it
    prepared = ongoing[:16] + bytes([2 if outcome == "commit" else 3]) + ongoing[17:]
    with open(seg, "r+b") as f:
        f.seek(end_pos)
        f.write(record_batch([(key, prepared)], base_offset=end, timestamp=int(time.time() * 1000)))
        f.truncate()
    broker.start()
    want = sorted("v%d" % k for k in range(8)) if outcome == "commit" else []
    assert committed_values(bs, "txprep", 2, len(want)) == want
    name = "PrepareCommit" if outcome == "commit" else "PrepareAbort"
    assert "tx-prep: was in %s at shutdown; writing its markers" % name in broker.log_text()
    # complete: the producer's transaction is over (its EndTxn retry answers accordingly)
    p2 = txn_producer(bs, "tx-prep")
    p2.init_transactions(30)
    p2.begin_transaction()
    p2.produce("txprep", value="next", partition=0)
    p2.commit_transaction(30)
    assert committed_values(bs, "txprep", 2, len(want) + 1) == sorted(want + ["next"])


def test_ongoing_transaction_at_crash_is_aborted_by_its_timeout_after_restart(broker):
    bs = broker.bootstrap
    open_transaction(bs, "txcrto", "tx-crto", ["stale%d" % k for k in range(6)], **{"transaction.timeout.ms": 3000})
    broker.kill9()
    broker.start()
    # The replayed Ongoing state keeps its start time: the reaper aborts it.
    wait_for(lambda: "tx-crto: open for more than transaction.timeout.ms" in broker.log_text().split("==== start 1")[1],
             timeout=20, what="the replayed transaction to be aborted")
    other = txn_producer(bs, "tx-crto-other")
    other.init_transactions(30)
    other.begin_transaction()
    other.produce("txcrto", value="fresh", partition=1)
    other.commit_transaction(30)
    assert committed_values(bs, "txcrto", 2, 1) == ["fresh"]
    assert len(committed_values(bs, "txcrto", 2, 7, "read_uncommitted")) == 7


class Flex:
    """A reader of flexible-version (KIP-482) response bodies."""

    def __init__(self, data):
        self.d, self.p = data, 0

    def take(self, fmt):
        import struct
        v = struct.unpack_from(fmt, self.d, self.p)
        self.p += struct.calcsize(fmt)
        return v[0]

    def uvarint(self):
        shift, v = 0, 0
        while True:
            c = self.d[self.p]
            self.p += 1
            v |= (c & 0x7F) << shift
            shift += 7
            if not c & 0x80:
                return v

    def string(self):
        n = self.uvarint() - 1
        s = self.d[self.p:self.p + n].decode()
        self.p += n
        return s

    def array(self, item):
        return [item() for _ in range(self.uvarint() - 1)]

    def tags(self):
        assert self.uvarint() == 0


def cstr(s):
    b = s.encode()
    return bytes([len(b) + 1]) + b


def carray(items):
    return bytes([len(items) + 1]) + b"".join(items)


def flex_request(bs, api_key, version, body):
    import struct
    from kproto import Conn
    c = Conn(bs)
    try:
        c.request(api_key, version, body, header_v2=True)
        r = Flex(c.recv_frame())
    finally:
        c.close()
    r.take(">i")  # correlation id
    r.tags()      # response header v1
    return r


def describe_transactions(bs, ids):
    r = flex_request(bs, 65, 0, carray([cstr(i) for i in ids]) + b"\x00")
    r.take(">i")

    def topic():
        t = (r.string(), r.array(lambda: r.take(">i")))
        r.tags()
        return t

    def state():
        s = dict(error=r.take(">h"), id=r.string(), state=r.string(), timeout=r.take(">i"), start=r.take(">q"),
                 pid=r.take(">q"), epoch=r.take(">h"), topics=r.array(topic))
        r.tags()
        return s

    out = r.array(state)
    r.tags()
    return out


def list_transactions(bs, states=(), pids=(), duration=None):
    import struct
    body = carray([cstr(s) for s in states]) + carray([struct.pack(">q", p) for p in pids])
    version = 0 if duration is None else 1
    if version:
        body += struct.pack(">q", duration)
    r = flex_request(bs, 66, version, body + b"\x00")
    r.take(">i")
    error = r.take(">h")
    unknown = r.array(r.string)

    def state():
        s = (r.string(), r.take(">q"), r.string())
        r.tags()
        return s

    out = r.array(state)
    r.tags()
    return error, unknown, sorted(out)


def test_describe_and_list_transactions(broker):
    bs = broker.bootstrap
    p = open_transaction(bs, "txdesc", "tx-open", ["x", "y"], partitions=2, **{"transaction.timeout.ms": 45000})
    done = txn_producer(bs, "tx-done")
    done.init_transactions(30)
    done.begin_transaction()
    done.produce("txdesc", value="z", partition=1)
    done.commit_transaction(30)
    d = {s["id"]: s for s in describe_transactions(bs, ["tx-open", "tx-done", "tx-none"])}
    assert d["tx-open"]["error"] == 0 and d["tx-open"]["state"] == "Ongoing"
    assert d["tx-open"]["timeout"] == 45000 and d["tx-open"]["start"] > 0 and d["tx-open"]["pid"] >= 0
    assert d["tx-open"]["topics"] == [("txdesc", [0, 1])]
    assert d["tx-done"]["state"] == "CompleteCommit" and d["tx-done"]["topics"] == []
    assert d["tx-none"]["error"] == 105  # TRANSACTIONAL_ID_NOT_FOUND
    pid_open = d["tx-open"]["pid"]
    err, unknown, all_ = list_transactions(bs)
    assert err == 0 and unknown == []
    assert all_ == sorted([("tx-open", pid_open, "Ongoing"), ("tx-done", d["tx-done"]["pid"], "CompleteCommit")])
    assert list_transactions(bs, states=["Ongoing", "Bogus"])[1:] == (["Bogus"], [("tx-open", pid_open, "Ongoing")])
    assert list_transactions(bs, pids=[d["tx-done"]["pid"]])[2] == [("tx-done", d["tx-done"]["pid"], "CompleteCommit")]
    time.sleep(1.2)
    assert list_transactions(bs, states=["Ongoing"], duration=1000)[2] == [("tx-open", pid_open, "Ongoing")]
    assert list_transactions(bs, states=["Ongoing"], duration=600000)[2] == []
    p.abort_transaction(30)
    assert describe_transactions(bs, ["tx-open"])[0]["state"] == "CompleteAbort"


def test_consume_transform_produce_100k_exactly_once_across_kill9(broker):
    """The issue's loop: read `in`, write transformed copies to `out` and the consumed offsets in
    the same transaction (send_offsets_to_transaction), 100,000 messages in batches, with the
    broker killed -9 in the middle of a transaction (data and offsets sent, not committed) and
    restarted. A transaction that fails is aborted and the consumer rewinds to the committed
    offsets. `out` read_committed holds every input exactly once."""
    from confluent_kafka import OFFSET_BEGINNING
    from helpers import producer, produce_all
    bs = broker.bootstrap
    total, batch, parts = 100_000, 2_000, 3
    create_topic(bs, "eos-in", partitions=parts)
    create_topic(bs, "eos-out", partitions=parts)
    produce_all(producer(bs, **{"linger.ms": 20, "batch.num.messages": 10000}), "eos-in",
                (dict(value=b"m%d" % i, partition=i % parts) for i in range(total)))
    c = Consumer({"bootstrap.servers": bs, "group.id": "eos-g", "enable.auto.commit": False,
                  "isolation.level": "read_committed", "auto.offset.reset": "earliest",
                  "enable.partition.eof": False})

    def rewind():
        committed = c.committed([TopicPartition("eos-in", i) for i in range(parts)], timeout=30)
        c.assign([TopicPartition("eos-in", tp.partition, tp.offset if tp.offset >= 0 else OFFSET_BEGINNING)
                  for tp in committed])

    rewind()
    p = txn_producer(bs, "eos-txn", **{"linger.ms": 20, "batch.num.messages": 10000})
    p.init_transactions(30)
    # two crashes: one after the transaction's data and offsets reached the broker, one while
    # its produce requests may still be in flight
    crashes = [(total // 2, True), (3 * total // 4, False)]
    done, crashed, aborted, deadline = 0, 0, 0, time.time() + 150
    try:
        while done < total and time.time() < deadline:
            msgs = [m for m in c.consume(batch, 1.0) if m.error() is None]
            if not msgs:
                continue
            p.begin_transaction()
            for m in msgs:
                while True:
                    try:
                        p.produce("eos-out", value=m.value().upper(), partition=m.partition())
                        break
                    except BufferError:
                        p.poll(0.05)
            if crashed < len(crashes) and done >= crashes[crashed][0] and not crashes[crashed][1]:
                broker.kill9()
                broker.start()
                crashed += 1
            p.send_offsets_to_transaction(c.position(c.assignment()), c.consumer_group_metadata(), 60)
            if crashed < len(crashes) and done >= crashes[crashed][0]:
                p.flush(60)  # this transaction's data and offsets are on the broker, not committed
                broker.kill9()
                broker.start()
                crashed += 1
            try:
                p.commit_transaction(60)
                done += len(msgs)
            except KafkaException as e:
                assert e.args[0].txn_requires_abort(), e
                p.abort_transaction(60)
                aborted += 1
                rewind()
    finally:
        c.close()
    assert crashed == 2 and done == total, (done, aborted)
    got = committed_values(bs, "eos-out", parts, total)
    assert len(got) == total
    assert got == sorted("M%d" % i for i in range(total))


def test_transactional_writes_outside_the_transaction_are_refused(broker):
    """The partition's leader is the transaction's coordinator here (one node): a transactional
    batch for a partition the producer never added gets INVALID_TXN_STATE, and nothing lands;
    so do offsets sent without AddOffsetsToTxn."""
    import struct

    from kproto import Conn, kstr, produce_v3, record_batch
    create_topic(broker.bootstrap, "stray", partitions=2)
    conn = Conn(broker.bootstrap)
    pid = epoch = None
    for _ in range(100):  # InitProducerId v0 until its coordinator's partition is loaded
        conn.request(22, 0, kstr("tx-stray") + struct.pack(">i", 60000))
        frame = conn.recv_frame()
        err, pid, epoch = struct.unpack(">hqh", frame[8:20])  # correlation id, throttle, then these
        if err == 0:
            break
        time.sleep(0.1)
    assert err == 0
    batch = record_batch([(None, b"stray")], attributes=0x10, producer_id=pid, producer_epoch=epoch, base_sequence=0)
    body = produce_v3("stray", 1, batch)
    conn.request(0, 3, kstr("tx-stray") + body[2:])  # Produce v3 with this TransactionalId
    frame = conn.recv_frame()
    tlen = struct.unpack(">h", frame[8:10])[0]
    perr = struct.unpack(">h", frame[10 + tlen + 8:10 + tlen + 10])[0]  # topic name, partition count, index
    assert perr == 48  # INVALID_TXN_STATE
    # TxnOffsetCommit v0 before AddOffsetsToTxn: refused the same way, nothing committed (the
    # group coordinator is up: a plain commit of another group made __consumer_offsets)
    warm = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "g-warm"})
    warm.commit(offsets=[TopicPartition("stray", 0, 1)], asynchronous=False)
    warm.close()
    conn.request(28, 0, kstr("tx-stray") + kstr("g-stray") + struct.pack(">qh", pid, epoch) + struct.pack(">i", 1)
                 + kstr("stray") + struct.pack(">i", 1) + struct.pack(">iq", 0, 7) + kstr(""))
    frame = conn.recv_frame()
    tlen = struct.unpack(">h", frame[12:14])[0]  # correlation id, throttle, topic count, then the name
    assert struct.unpack(">h", frame[14 + tlen + 8:14 + tlen + 10])[0] == 48  # partition count, index, error
    conn.close()
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "g-stray"})
    assert c.get_watermark_offsets(TopicPartition("stray", 1), timeout=10) == (0, 0)
    assert c.committed([TopicPartition("stray", 0)], timeout=10)[0].offset < 0
    c.close()
