"""Group (and transaction) coordinators in cluster mode: the coordinator of a
group is the leader of its partition of __consumer_offsets. Real clients find
it with FindCoordinator, follow NOT_COORDINATOR when it moves, and keep their
committed offsets across a coordinator killed with -9."""
import struct
import threading
import time

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

import kproto as kp
from cluster import Cluster, high_watermarks
from helpers import java_hash

OFFSETS_PARTITIONS = 6
COORD_OVERRIDES = {"offsets.topic.num.partitions": str(OFFSETS_PARTITIONS),
                   "group.initial.rebalance.delay.ms": "500"}


def partition_for(key, n=OFFSETS_PARTITIONS):
    h = java_hash(key)
    return (0 if h == -(1 << 31) else abs(h)) % n


def kstr(s):
    b = s.encode()
    return struct.pack(">h", len(b)) + b


def cstr(s):  # compact string
    b = s.encode()
    return bytes([len(b) + 1]) + b


def find_coordinator(bootstrap, key, key_type=0, version=1):
    """(error, node id, port) from FindCoordinator v1 or v4 (batched, flexible)."""
    conn = kp.Conn(bootstrap)
    try:
        if version >= 4:
            conn.request(10, 4, struct.pack(">b", key_type) + bytes([2]) + cstr(key) + b"\x00", header_v2=True)
            r = conn.recv_frame()
            pos = 4 + 1 + 4  # correlation id, tagged fields, throttle
            assert r[pos] - 1 == 1
            pos += 1
            klen = r[pos] - 1
            assert r[pos + 1:pos + 1 + klen] == key.encode()
            pos += 1 + klen
            node = struct.unpack(">i", r[pos:pos + 4])[0]
            pos += 4
            hlen = r[pos] - 1
            pos += 1 + hlen
            port, err = struct.unpack(">ih", r[pos:pos + 6])
            return err, node, port
        conn.request(10, 1, kstr(key) + struct.pack(">b", key_type))
        r = conn.recv_frame()
        pos = 4 + 4
        err = struct.unpack(">h", r[pos:pos + 2])[0]
        pos += 2
        mlen = struct.unpack(">h", r[pos:pos + 2])[0]
        pos += 2 + max(mlen, 0)
        node = struct.unpack(">i", r[pos:pos + 4])[0]
        pos += 4
        hlen = struct.unpack(">h", r[pos:pos + 2])[0]
        pos += 2 + hlen
        port = struct.unpack(">i", r[pos:pos + 4])[0]
        return err, node, port
    finally:
        conn.close()


def coordinator(c, key, key_type=0, timeout=30):
    """The coordinator every running node names for a group (key_type 0) or a transactional
    id (1), with FindCoordinator v1 and v4, once they agree and it is the leader of the key's
    partition of __consumer_offsets (or __transaction_state), at that node's port."""
    topic = "__transaction_state" if key_type else "__consumer_offsets"
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        answers = set()
        for b in c.brokers:
            if b.proc is None:
                continue
            try:
                for v in (1, 4):
                    answers.add(find_coordinator(b.bootstrap, key, key_type=key_type, version=v))
            except (OSError, ConnectionError, AssertionError) as e:
                answers.add(("error", str(e)))
        last = answers
        if len(answers) == 1:
            err, node, port = next(iter(answers))
            if err == 0 and c.broker(node).proc is not None:
                t = c.metadata(topic).topics.get(topic)
                p = t.partitions.get(partition_for(key)) if t else None
                if p is not None and p.leader == node:
                    assert port == c.broker(node).port
                    return node
        time.sleep(0.2)
    raise AssertionError("no agreed coordinator for %s (key type %d): %r" % (key, key_type, last))


def produce(bootstrap, topic, n, partitions):
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True, "linger.ms": 5})
    acked = []

    def cb(err, msg):
        if err is None:
            acked.append(msg.value())

    for i in range(n):
        p.produce(topic, value=b"m-%06d" % i, partition=i % partitions, on_delivery=cb)
        if i % 1000 == 0:
            p.poll(0)
    assert p.flush(60) == 0
    assert len(acked) == n
    return set(acked)


def committed(bootstrap, group, topic, partitions, timeout=10):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        tps = c.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=timeout)
        return {tp.partition: tp.offset for tp in tps}
    finally:
        c.close()


def wait_committed_to_the_end(bootstrap, group, topic, partitions, timeout=30):
    """The group's committed offsets once they reach the partitions' high watermarks (both
    returned: {partition: offset}); a lookup failing while the coordinator moves is retried."""
    ends = high_watermarks(bootstrap, topic, partitions)
    deadline = time.time() + timeout
    while True:
        try:
            final = committed(bootstrap, group, topic, partitions)
        except KafkaException:
            final = {}
        if final == ends or time.time() > deadline:
            return final, ends
        time.sleep(0.3)


class Member(threading.Thread):
    """A confluent-kafka group member: consumes a batch, commits it synchronously, records both."""

    def __init__(self, bootstrap, group, topic, sink, lock):
        super().__init__(daemon=True)
        self.c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
                           "enable.auto.commit": False, "session.timeout.ms": 6000,
                           "heartbeat.interval.ms": 300, "fetch.wait.max.ms": 100,
                           "topic.metadata.refresh.interval.ms": 1000})
        self.topic, self.sink, self.lock = topic, sink, lock
        self.acked_commits = []  # (time, {partition: offset}) of commits the coordinator acknowledged
        self.stop = threading.Event()
        self.error = None

    def run(self):
        try:
            self.c.subscribe([self.topic])
            while not self.stop.is_set():
                msgs = self.c.consume(num_messages=20, timeout=0.3)
                good = [m for m in msgs if not m.error()]
                if not good:
                    continue
                with self.lock:
                    self.sink.extend(m.value() for m in good)
                try:
                    tps = self.c.commit(asynchronous=False)
                except KafkaException:
                    continue  # rebalancing or the coordinator moving: the next commit covers it
                done = {tp.partition: tp.offset for tp in tps or [] if tp.error is None and tp.offset >= 0}
                self.acked_commits.append((time.time(), done))
                time.sleep(0.05)  # a steady pace: the coordinator is killed mid-consumption
        except Exception as e:  # noqa: BLE001 - reported by the test
            self.error = e
        finally:
            self.c.close()


def test_group_follows_coordinator_across_kill(broker_factory):
    c = Cluster(broker_factory, overrides=COORD_OVERRIDES).start()
    topic, partitions, total, group = "events", 6, 3000, "billing"
    c.create_topic(topic, partitions=partitions, rf=3, config={"min.insync.replicas": "2"})
    values = produce(c.bootstrap, topic, total, partitions)

    sink, lock = [], threading.Lock()
    members = [Member(c.bootstrap, group, topic, sink, lock) for _ in range(3)]
    for m in members:
        m.start()
    try:
        # FindCoordinator (v1 and v4, on every node) names the leader of the group's partition.
        coord = coordinator(c, group)
        deadline = time.time() + 40
        while time.time() < deadline and len(sink) < total // 4:
            time.sleep(0.02)
        assert len(sink) >= total // 4, "consumed only %d" % len(sink)
        acked_before = {}
        kill_time = time.time()
        with lock:
            assert len(set(sink)) < total, "consumed everything before the kill"
        c.broker(coord).kill9()
        for m in members:
            for t, done in m.acked_commits:
                if t < kill_time:
                    for p, o in done.items():
                        acked_before[p] = max(acked_before.get(p, -1), o)
        assert acked_before, "no commit acknowledged before the kill"

        # The group re-forms on the new coordinator and consumes the rest.
        new_coord = coordinator(c, group)
        assert new_coord != coord
        live = ",".join(b.bootstrap for b in c.brokers if b.proc is not None)
        deadline = time.time() + 45
        while time.time() < deadline:
            with lock:
                seen = set(sink)
            if values <= seen:
                break
            time.sleep(0.2)
        assert values <= set(sink), "%d messages never consumed" % len(values - set(sink))
        final, ends = wait_committed_to_the_end(live, group, topic, partitions)
        assert sum(ends.values()) == total
        assert final == ends, "committed %r, ends %r" % (final, ends)
        # Nothing acknowledged was lost: committed offsets never went below an acknowledged commit.
        for p, o in acked_before.items():
            assert final[p] >= o
        for m in members:
            m.stop.set()
        for m in members:
            m.join(20)
            assert m.error is None, m.error
        log = c.broker(new_coord).log_text()
        assert "__consumer_offsets-%d: leader at epoch" % partition_for(group) in log
    finally:
        for m in members:
            m.stop.set()
    c.stop()


def heartbeat_error(bootstrap, group):
    conn = kp.Conn(bootstrap)
    try:
        conn.request(12, 0, kstr(group) + struct.pack(">i", 1) + kstr("m"))
        return struct.unpack(">h", conn.recv_frame()[4:6])[0]
    finally:
        conn.close()


def test_not_coordinator_and_kafka_python_group(broker_factory):
    c = Cluster(broker_factory, overrides=COORD_OVERRIDES).start()
    topic, partitions, total = "kp", 4, 400
    c.create_topic(topic, partitions=partitions, rf=3)
    values = produce(c.bootstrap, topic, total, partitions)
    group = "kp-group"
    coord = coordinator(c, group)
    # A coordinator request on any other node: NOT_COORDINATOR (16); on the coordinator the group is unknown.
    for b in c.brokers:
        err = heartbeat_error(b.bootstrap, group)
        assert err == (25 if c.brokers.index(b) + 1 == coord else 16), (c.brokers.index(b) + 1, coord, err)

    from kafka import KafkaConsumer
    got, lock, done, errors, assigned = [], threading.Lock(), threading.Event(), [], []

    def member():  # kafka-python blocks in poll() while its group rebalances: a thread each
        k = KafkaConsumer(topic, bootstrap_servers=c.bootstrap.split(","), group_id=group,
                          auto_offset_reset="earliest", enable_auto_commit=False, api_version=(2, 5, 0),
                          session_timeout_ms=6000, heartbeat_interval_ms=500)
        try:
            while not done.is_set():
                for recs in k.poll(timeout_ms=200).values():
                    with lock:
                        got.extend(r.value for r in recs)
                k.commit()
                if k.assignment():
                    assigned.append(frozenset(tp.partition for tp in k.assignment()))
        except Exception as e:  # noqa: BLE001 - reported by the test
            errors.append(e)
        finally:
            k.close()

    threads = [threading.Thread(target=member, daemon=True) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        deadline = time.time() + 40
        while time.time() < deadline and len(set(got)) < total:
            time.sleep(0.2)
        assert set(got) == values
    finally:
        done.set()
        for t in threads:
            t.join(30)
    assert not errors, errors
    assert any(len(a) < partitions for a in assigned)  # the partitions were shared
    final, ends = wait_committed_to_the_end(c.bootstrap, group, topic, partitions)
    assert final == ends, "committed %r, ends %r" % (final, ends)
    c.stop()


TXN_OVERRIDES = dict(COORD_OVERRIDES, **{"transaction.state.log.num.partitions": str(OFFSETS_PARTITIONS)})


def read_committed(bootstrap, topic, partitions, timeout=40):
    """Every value of the topic a read_committed consumer sees, up to the high watermarks."""
    ends = high_watermarks(bootstrap, topic, partitions)
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "rc-reader", "enable.auto.commit": False,
                  "isolation.level": "read_committed", "fetch.wait.max.ms": 100})
    out = []
    try:
        c.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
        deadline = time.time() + timeout
        while time.time() < deadline:
            m = c.poll(0.5)
            if m is not None and not m.error():
                out.append(m.value())
            pos = {tp.partition: tp.offset for tp in c.position([TopicPartition(topic, p) for p in range(partitions)])}
            if all(pos.get(p, -1) >= ends[p] for p in range(partitions)):
                break
    finally:
        c.close()
    return out


def test_transactions_across_leaders(broker_factory):
    c = Cluster(broker_factory, overrides=TXN_OVERRIDES).start()
    topic, partitions = "tx", 3
    c.create_topic(topic, partitions=partitions, rf=3, config={"min.insync.replicas": "2"})
    md = c.wait_leaders(topic, partitions)
    assert len({p.leader for p in md.topics[topic].partitions.values()}) >= 2  # markers go to other brokers
    p = Producer({"bootstrap.servers": c.bootstrap, "transactional.id": "tx-across", "linger.ms": 5})
    p.init_transactions(30)
    coord = coordinator(c, "tx-across", key_type=1)
    want = []
    for i in range(8):
        p.begin_transaction()
        vals = [b"t%d-p%d-%d" % (i, part, k) for part in range(partitions) for k in range(3)]
        for v in vals:
            p.produce(topic, value=v, partition=int(v.split(b"-")[1][1:]))
        if i % 2 == 0:
            p.commit_transaction(30)
            want += vals
        else:
            p.abort_transaction(30)
    # Two more producers at once (their markers travel in the same rounds), each committing every other one.
    errors = []

    def run(tid):
        try:
            q = Producer({"bootstrap.servers": c.bootstrap, "transactional.id": tid, "linger.ms": 5})
            q.init_transactions(30)
            for i in range(6):
                q.begin_transaction()
                vals = [b"%s-%d-p%d" % (tid.encode(), i, part) for part in range(partitions)]
                for part, v in enumerate(vals):
                    q.produce(topic, value=v, partition=part)
                if i % 2 == 0:
                    q.commit_transaction(30)
                    with lock:
                        want.extend(vals)
                else:
                    q.abort_transaction(30)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    lock = threading.Lock()
    threads = [threading.Thread(target=run, args=(tid,)) for tid in ("tx-a", "tx-b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    got = read_committed(c.bootstrap, topic, partitions)
    assert sorted(got) == sorted(want)
    log = c.broker(coord).log_text()
    assert "__transaction_state-%d: leader at epoch" % partition_for("tx-across") in log
    c.stop()


def test_consume_transform_produce_across_txn_coordinator_kill(broker_factory):
    """Exactly once through a transaction coordinator killed -9 mid-run: each input
    record's transformation is in the output once, as a read_committed consumer sees it."""
    c = Cluster(broker_factory, overrides=TXN_OVERRIDES).start()
    parts, total, group, txn_id = 3, 600, "ctp", "ctp-tx"
    c.create_topic("in", partitions=parts, rf=3, config={"min.insync.replicas": "2"})
    c.create_topic("out", partitions=parts, rf=3, config={"min.insync.replicas": "2"})
    values = produce(c.bootstrap, "in", total, parts)

    cons = Consumer({"bootstrap.servers": c.bootstrap, "group.id": group, "enable.auto.commit": False,
                     "auto.offset.reset": "earliest", "isolation.level": "read_committed",
                     "session.timeout.ms": 6000, "heartbeat.interval.ms": 300, "fetch.wait.max.ms": 100})
    cons.subscribe(["in"])

    def new_producer():
        p = Producer({"bootstrap.servers": c.bootstrap, "transactional.id": txn_id, "linger.ms": 5,
                      "transaction.timeout.ms": 10000})
        p.init_transactions(30)
        return p

    def rewind():
        """Back to the committed offsets: what an aborted transaction consumed is read again."""
        tps = cons.assignment()
        if tps:
            for tp in cons.committed(tps, timeout=10):
                cons.seek(TopicPartition(tp.topic, tp.partition, tp.offset if tp.offset >= 0 else 0))

    prod = new_producer()
    coord = coordinator(c, txn_id, key_type=1)
    done, killed, commits, aborts = 0, False, 0, 0
    deadline = time.time() + 50
    try:
        while time.time() < deadline:
            msgs = [m for m in cons.consume(num_messages=25, timeout=0.5) if not m.error()]
            if not msgs:
                ends = high_watermarks(",".join(b.bootstrap for b in c.brokers if b.proc), "in", parts)
                got = committed(",".join(b.bootstrap for b in c.brokers if b.proc), group, "in", parts)
                if got == ends:
                    break
                continue
            try:
                prod.begin_transaction()
                for m in msgs:
                    prod.produce("out", value=b"T(" + m.value() + b")", partition=m.partition())
                if not killed and commits >= 5:
                    c.broker(coord).kill9()  # the transaction coordinator dies with this one open
                    killed = True
                pos = cons.position(cons.assignment())
                prod.send_offsets_to_transaction(pos, cons.consumer_group_metadata(), 30)
                prod.commit_transaction(30)
                commits += 1
                done += len(msgs)
            except KafkaException as e:
                err = e.args[0]
                aborts += 1
                if err.txn_requires_abort():
                    try:
                        prod.abort_transaction(30)
                    except KafkaException:
                        prod = new_producer()
                elif not err.retriable():
                    prod = new_producer()  # fatal (fenced): a new instance takes over
                rewind()
    finally:
        cons.close()
    print("commits %d, aborts %d, consumed %d" % (commits, aborts, done))
    assert killed, "the coordinator was never killed (%d commits)" % commits
    live = ",".join(b.bootstrap for b in c.brokers if b.proc)
    assert committed(live, group, "in", parts) == high_watermarks(live, "in", parts)
    out = read_committed(live, "out", parts)
    want = sorted(b"T(" + v + b")" for v in values)
    dups = len(out) - len(set(out))
    assert dups == 0, "%d duplicated outputs" % dups
    assert sorted(out) == want
    assert coordinator(c, txn_id, key_type=1) != coord
    c.stop()
