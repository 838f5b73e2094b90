"""Topic administration in cluster mode, through the active controller: real
admin clients (confluent-kafka, kafka-python) grow topics with CreatePartitions
and change topic configs with AlterConfigs / IncrementalAlterConfigs, sent to
any node (a node that is not the controller forwards them). The new partitions
are replicated and led like the others; a changed config takes effect on every
replica (min.insync.replicas on the leader, retention on every copy) and
DescribeConfigs shows it on every node. A restarted replica resumes from its
checkpointed high watermark; a topic deleted while a node was down is gone from
its disk once it is back."""
import os
import struct
import time

from confluent_kafka import Producer
from confluent_kafka.admin import ConfigResource, NewPartitions

import kproto as kp
from cluster import Cluster, consume_all, high_watermarks, wait_for


def produce(bootstrap, topic, per_partition, partitions, tag="m", size=None, batch_bytes=1000000):
    """acks=all to each listed partition; returns {partition: [values]} (all acked)."""
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "message.timeout.ms": 30000,
                  "linger.ms": 5, "batch.size": batch_bytes})
    errs, acked = [], {q: [] for q in partitions}

    def cb(e, m):
        if e is not None:
            errs.append(e)
        else:
            acked[m.partition()].append(m.value())

    for q in partitions:
        for i in range(per_partition):
            v = ("%s-%d-%d" % (tag, q, i)).encode()
            if size:
                v = v.ljust(size, b".")
            p.produce(topic, v, partition=q, on_delivery=cb)
            p.poll(0)
    p.flush(60)
    assert not errs, errs[:3]
    return acked


_producers = []  # kept: python3-confluent-kafka 1.7 can leave an exception set when one is freed mid-test


def produce_one(bootstrap, topic, value, retries=0, timeout_ms=8000):
    """One acks=all message (without retries: the broker's own answer): [error or None]."""
    errs = []
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "retries": retries, "message.timeout.ms": timeout_ms})
    _producers.append(p)
    p.produce(topic, value, on_delivery=lambda e, m: errs.append(e))
    p.flush(timeout_ms / 1000 + 10)
    return errs


def controller_id(c):
    return c.metadata().controller_id


def non_controller(c):
    ctl = controller_id(c)
    return next(b for i, b in enumerate(c.brokers, 1) if i != ctl and b.proc is not None)


# ---- raw requests (to one chosen node) ----------------------------------------------

call, _str = kp.call, kp.read_str


def incremental_alter(bootstrap, topic, ops, validate_only=False):
    """IncrementalAlterConfigs v0 for one topic: ops = [(name, op, value)], op 0 SET 1 DELETE
    2 APPEND 3 SUBTRACT. Returns (error code, message)."""
    body = struct.pack(">i", 1) + struct.pack(">b", 2) + kp.kstr(topic) + struct.pack(">i", len(ops))
    for name, op, value in ops:
        body += kp.kstr(name) + struct.pack(">b", op) + kp.kstr(value)
    body += struct.pack(">?", validate_only)
    r = call(bootstrap, 44, 0, body)
    pos = 4 + 4  # correlation id, throttle
    assert struct.unpack(">i", r[pos:pos + 4])[0] == 1
    pos += 4
    code = struct.unpack(">h", r[pos:pos + 2])[0]
    msg, pos = _str(r, pos + 2)
    return code, msg


def describe_topic_configs(bootstrap, topic, keys):
    """DescribeConfigs v0 of one topic on this node: {name: value}."""
    code, out = kp.describe_configs_v0(bootstrap, 2, topic, keys)
    assert code == 0, code
    return out


def create_partitions_raw(bootstrap, topic, count, validate_only=False):
    """CreatePartitions v0 for one topic (no assignment): (error code, message)."""
    body = struct.pack(">i", 1) + kp.kstr(topic) + struct.pack(">i", count) + struct.pack(">i", -1)
    body += struct.pack(">i?", 10000, validate_only)
    r = call(bootstrap, 37, 0, body)
    pos = 4 + 4 + 4
    _, pos = _str(r, pos)
    code = struct.unpack(">h", r[pos:pos + 2])[0]
    msg, _ = _str(r, pos + 2)
    return code, msg


def segments(broker, topic, partition):
    d = os.path.join(broker.data_dir, "%s-%d" % (topic, partition))
    return sorted(f for f in os.listdir(d) if f.endswith(".log")) if os.path.isdir(d) else []


# ---- CreatePartitions ---------------------------------------------------------------

def test_create_partitions_with_both_admin_clients(broker_factory):
    c = Cluster(broker_factory).start()
    c.create_topic("grow", partitions=3, rf=3)
    fs = c.admin().create_partitions([NewPartitions("grow", 6)], operation_timeout=10)
    fs["grow"].result(30)
    c.wait_leaders("grow", 6, isr=3)
    md = c.metadata("grow").topics["grow"]
    for q in range(3, 6):
        assert sorted(md.partitions[q].replicas) == [1, 2, 3]
    # The new partitions take acks=all writes and every node's metadata serves them.
    acked = produce(c.bootstrap, "grow", 50, range(6))
    for b in c.brokers:
        got = consume_all(b.bootstrap, "grow", 6)
        for q in range(6):
            assert [v for _, v in got[q]] == acked[q], "partition %d read through node %s" % (q, b.bootstrap)
    assert high_watermarks(c.bootstrap, "grow", 6) == {q: 50 for q in range(6)}

    # kafka-python: validate_only changes nothing; a manual assignment; shrinking is refused.
    from kafka.admin import KafkaAdminClient, NewPartitions as KNewPartitions
    from kafka.errors import InvalidPartitionsError
    ka = KafkaAdminClient(bootstrap_servers=c.bootstrap.split(","), api_version=(2, 5, 0), request_timeout_ms=30000)
    try:
        ka.create_partitions({"grow": KNewPartitions(9)}, validate_only=True)
        time.sleep(0.5)
        assert len(c.metadata("grow").topics["grow"].partitions) == 6
        ka.create_partitions({"grow": KNewPartitions(8, [[3, 1, 2], [2, 3, 1]])})
        md = c.wait_leaders("grow", 8, isr=3).topics["grow"]
        assert md.partitions[6].replicas == [3, 1, 2] and md.partitions[7].replicas == [2, 3, 1]
        assert md.partitions[6].leader == 3 and md.partitions[7].leader == 2
        try:
            ka.create_partitions({"grow": KNewPartitions(4)})
            raise AssertionError("shrinking a topic was accepted")
        except InvalidPartitionsError:
            pass
    finally:
        ka.close()
    acked = produce(c.bootstrap, "grow", 20, [6, 7], tag="k")
    got = consume_all(c.broker(1).bootstrap, "grow", 8)
    assert [v for _, v in got[6]] == acked[6] and [v for _, v in got[7]] == acked[7]
    # Sent to a node that is not the controller, the request is forwarded.
    code, msg = create_partitions_raw(non_controller(c).bootstrap, "grow", 9)
    assert code == 0, msg
    c.wait_leaders("grow", 9)
    code, msg = create_partitions_raw(non_controller(c).bootstrap, "nosuch", 9)
    assert code == 3, (code, msg)  # UNKNOWN_TOPIC_OR_PARTITION
    # Every replica holds the new partitions' data on disk.
    for b in c.brokers:
        for q in (3, 6, 7):
            assert segments(b, "grow", q), (b.data_dir, q)
    c.stop()


# ---- configs -------------------------------------------------------------------------

def test_alter_min_insync_replicas_takes_effect(broker_factory):
    c = Cluster(broker_factory).start()
    c.create_topic("strict", partitions=1, rf=3)
    fs = c.admin().alter_configs([ConfigResource("topic", "strict", set_config={"min.insync.replicas": "3"})])
    fs[list(fs)[0]].result(30)
    for b in c.brokers:  # the image's value on every node
        wait_for(lambda: describe_topic_configs(b.bootstrap, "strict", ["min.insync.replicas"]).get(
            "min.insync.replicas") == "3", what="min.insync.replicas=3 on " + b.bootstrap)
    produce(c.bootstrap, "strict", 5, [0])
    leader = c.leader_of("strict", 0)
    follower = next(i for i in (1, 2, 3) if i != leader)
    c.broker(follower).kill9()

    def isr_size():
        t = c.metadata("strict").topics.get("strict")
        return len(t.partitions[0].isrs) if t and 0 in t.partitions else -1

    wait_for(lambda: isr_size() == 2, what="the ISR to shrink to 2")
    errs = produce_one(c.bootstrap, "strict", b"refused")
    assert errs and errs[0] is not None and "NOT_ENOUGH_REPLICAS" in errs[0].name(), errs
    # Back to 2 (incremental, through a node that is not the controller): acks=all works again.
    code, msg = incremental_alter(non_controller(c).bootstrap, "strict", [("min.insync.replicas", 0, "2")])
    assert code == 0, msg
    # NOT_ENOUGH_REPLICAS is retriable: the producer's retries get through once the leader has the new value.
    assert produce_one(c.bootstrap, "strict", b"accepted", retries=1000, timeout_ms=30000) == [None]
    c.broker(follower).start()
    c.stop()


def test_retention_change_reaches_every_replica(broker_factory):
    c = Cluster(broker_factory, overrides={"log.retention.check.interval.ms": "200",
                                           "message.max.bytes": "100000"}).start()
    # A topic without configs of its own takes the broker's (message.max.bytes here).
    c.create_topic("plain", partitions=1, rf=3)
    errs = []
    p = Producer({"bootstrap.servers": c.bootstrap, "acks": "all", "retries": 0, "message.max.bytes": 1000000})
    _producers.append(p)
    p.produce("plain", b"x" * 200000, on_delivery=lambda e, m: errs.append(e))
    p.flush(30)
    assert errs and errs[0] is not None and "MSG_SIZE_TOO_LARGE" in errs[0].name(), errs
    c.create_topic("ret", partitions=1, rf=3, config={"segment.bytes": "16384"})
    produce(c.bootstrap, "ret", 400, [0], size=1000, batch_bytes=8000)  # batches well under a segment
    for b in c.brokers:
        wait_for(lambda: len(segments(b, "ret", 0)) >= 10, what="segments on " + b.data_dir)
    before = {b.data_dir: segments(b, "ret", 0) for b in c.brokers}
    # Validation happens before anything is written.
    code, msg = incremental_alter(non_controller(c).bootstrap, "ret", [("retention.bytes", 0, "lots")])
    assert code == 40, (code, msg)  # INVALID_CONFIG
    code, msg = incremental_alter(non_controller(c).bootstrap, "ret", [("no.such.config", 0, "1")])
    assert code == 40, (code, msg)
    code, msg = incremental_alter(non_controller(c).bootstrap, "ret", [("retention.bytes", 0, "40000")],
                                  validate_only=True)
    assert code == 0, msg
    time.sleep(1)
    assert all(len(segments(b, "ret", 0)) >= len(before[b.data_dir]) for b in c.brokers)
    code, msg = incremental_alter(non_controller(c).bootstrap, "ret", [("retention.bytes", 0, "40000")])
    assert code == 0, msg
    for b in c.brokers:
        wait_for(lambda: len(segments(b, "ret", 0)) <= 5 and segments(b, "ret", 0)[0] != before[b.data_dir][0],
                 what="old segments deleted on " + b.data_dir)
        cfg = describe_topic_configs(b.bootstrap, "ret", ["retention.bytes", "segment.bytes", "cleanup.policy"])
        assert cfg == {"retention.bytes": "40000", "segment.bytes": "16384", "cleanup.policy": "delete"}, cfg
    # The log start moved for consumers too.
    from confluent_kafka import Consumer, TopicPartition
    cons = Consumer({"bootstrap.servers": c.bootstrap, "group.id": "lo"})
    lo, hi = cons.get_watermark_offsets(TopicPartition("ret", 0), timeout=10)
    cons.close()
    assert lo > 0 and hi == 400
    # AlterConfigs replaces the whole set: segment.bytes goes back to its default.
    fs = c.admin().alter_configs([ConfigResource("topic", "ret", set_config={"retention.bytes": "50000"})])
    fs[list(fs)[0]].result(30)
    for b in c.brokers:
        wait_for(lambda: describe_topic_configs(b.bootstrap, "ret", ["retention.bytes", "segment.bytes"]) ==
                 {"retention.bytes": "50000", "segment.bytes": "1073741824"}, what="the replaced set on " + b.bootstrap)
    # kafka-python's DescribeConfigs sees it too.
    from kafka.admin import ConfigResource as KConfigResource, ConfigResourceType, KafkaAdminClient
    ka = KafkaAdminClient(bootstrap_servers=c.bootstrap.split(","), api_version=(2, 5, 0))
    try:
        r = ka.describe_configs([KConfigResource(ConfigResourceType.TOPIC, "ret")])
        entries = {e[0]: e[1] for e in r[0].resources[0][4]}
        assert entries["retention.bytes"] == "50000"
    finally:
        ka.close()
    c.stop()


# ---- a node that was down --------------------------------------------------------------

def partition_dirs(broker, topic):
    return sorted(d for d in os.listdir(broker.data_dir) if d.rsplit("-", 1)[0] == topic)


def test_topic_deleted_while_a_node_was_down_leaves_its_disk(broker_factory):
    c = Cluster(broker_factory, overrides={"auto.create.topics.enable": "false"}).start()
    c.create_topic("gone", partitions=2, rf=3)
    c.create_topic("kept", partitions=1, rf=3)
    produce(c.bootstrap, "gone", 20, [0, 1])
    acked = produce(c.bootstrap, "kept", 20, [0])
    down = non_controller(c)
    wait_for(lambda: partition_dirs(down, "gone") == ["gone-0", "gone-1"], what="the replicas on the node")
    down.stop()
    fs = c.admin().delete_topics(["gone"], operation_timeout=10)
    fs["gone"].result(30)
    for b in c.brokers:
        if b is not down:
            wait_for(lambda: partition_dirs(b, "gone") == [], what="gone deleted on " + b.data_dir)
    assert partition_dirs(down, "gone") == ["gone-0", "gone-1"]  # it was down
    down.start()
    wait_for(lambda: partition_dirs(down, "gone") == [], what="the deleted topic's copies removed at restart")
    # Everything else stays: the other topic's replica and the metadata log's directory.
    assert partition_dirs(down, "kept") == ["kept-0"]
    assert os.path.isdir(os.path.join(down.data_dir, "__cluster_metadata-0"))
    c.wait_leaders("kept", 1, isr=3)  # back in the ISR
    got = consume_all(down.bootstrap, "kept", 1)
    assert [v for _, v in got[0]] == acked[0]
    c.stop()


# ---- the high-watermark checkpoint -------------------------------------------------------

def metric(broker, name, topic, partition):
    import urllib.request
    try:
        with urllib.request.urlopen("http://%s/metrics" % broker.metrics, timeout=5) as r:
            text = r.read().decode()
    except OSError:
        return None
    key = '%s{topic="%s",partition="%d"} ' % (name, topic, partition)
    for line in text.splitlines():
        if line.startswith(key):
            return int(line[len(key):])
    return None


def test_restarted_replica_resumes_from_its_checkpointed_high_watermark(broker_factory):
    from conftest import free_port
    from confluent_kafka.admin import NewTopic
    c = Cluster(broker_factory, overrides={"replica.high.watermark.checkpoint.interval.ms": "200"})
    for b in c.brokers:
        b.metrics = "127.0.0.1:%d" % free_port()
        b.overrides["metrics.listeners"] = b.metrics
    c.start()
    ctl = controller_id(c)
    leader, follower = [i for i in (1, 2, 3) if i != ctl]
    fs = c.admin().create_topics([NewTopic("hw", 1, replica_assignment=[[leader, follower]])], operation_timeout=10)
    fs["hw"].result(30)
    c.wait_leaders("hw", 1, isr=2)
    produce(c.bootstrap, "hw", 100, [0])
    L, F = c.broker(leader), c.broker(follower)
    ckpt = os.path.join(F.data_dir, "replication-offset-checkpoint")

    def checkpointed():
        try:
            with open(ckpt) as f:
                return "hw 0 100\n" in f.read()
        except OSError:
            return False

    wait_for(checkpointed, what="the follower's checkpoint to hold high watermark 100")
    # The follower crashes (and leaves the ISR); its leader stops answering; it comes back and
    # cannot ask anyone what was committed.
    F.kill9()
    wait_for(lambda: c.metadata("hw").topics["hw"].partitions[0].isrs == [leader], what="the ISR to shrink")
    L.pause()
    try:
        F.start()
        first = wait_for(lambda: metric(F, "runnel_partition_high_watermark", "hw", 0) is not None, timeout=30,
                         what="the restarted follower to open its replica")
        samples = [metric(F, "runnel_partition_high_watermark", "hw", 0)]
        deadline = time.time() + 1.5
        while time.time() < deadline:
            samples.append(metric(F, "runnel_partition_high_watermark", "hw", 0))
            time.sleep(0.1)
        assert first and set(samples) == {100}, samples  # not its log start (0), not beyond its log end
        assert metric(F, "runnel_partition_log_end_offset", "hw", 0) == 100
    finally:
        L.resume()
    # Back together: the leader still answers 100, and the follower rejoins the ISR.
    c.wait_leaders("hw", 1, isr=2, timeout=60)
    assert high_watermarks(c.bootstrap, "hw", 1) == {0: 100}
    c.stop()


def test_node_catching_up_through_a_snapshot_drops_what_was_deleted_or_replaced(broker_factory):
    # Controllers keep 1 KB of the metadata log for broker-only nodes: a restarted one gets a
    # snapshot of the image, without the entries that deleted (and re-created) topics.
    from cluster import replica_bytes
    c = Cluster(broker_factory, n=3, controllers=3,
                overrides={"metadata.feed.max.bytes": "1024", "auto.create.topics.enable": "false"}).start()
    c.create_topic("gone", partitions=2, rf=3)
    c.create_topic("again", partitions=1, rf=3)
    produce(c.bootstrap, "gone", 10, [0, 1])
    produce(c.bootstrap, "again", 30, [0], tag="old")
    b6 = c.broker(6)
    wait_for(lambda: partition_dirs(b6, "again") == ["again-0"] and partition_dirs(b6, "gone") == ["gone-0", "gone-1"],
             what="node 6's replicas")
    with open(os.path.join(b6.data_dir, "again-0", "partition.metadata")) as f:
        old_id = f.read()
    assert old_id.startswith("version: 0\ntopic_id: ")
    b6.stop()
    for name in ("gone", "again"):
        c.admin().delete_topics([name], operation_timeout=10)[name].result(30)
    from confluent_kafka.admin import NewTopic  # the same name, another topic id; node 6 a replica again
    c.admin().create_topics([NewTopic("again", 1, replica_assignment=[[4, 5, 6]])])["again"].result(30)
    c.wait_leaders("again", 1)
    c.create_topic("filler", partitions=24, rf=2)  # more than the controllers' feed holds
    acked = produce(c.bootstrap, "again", 5, [0], tag="new")
    b6.start()
    wait_for(lambda: "node 6: metadata snapshot at offset" in b6.log_text().split("==== start 1")[1],
             what="node 6 to load a snapshot")
    wait_for(lambda: partition_dirs(b6, "gone") == [], what="the deleted topic's copies removed")
    c.wait_leaders("again", 1, isr=3, timeout=60)
    with open(os.path.join(b6.data_dir, "again-0", "partition.metadata")) as f:
        assert f.read() != old_id
    hw = high_watermarks(c.bootstrap, "again", 1)[0]
    assert hw == 5
    leader = c.broker(c.leader_of("again", 0))
    assert replica_bytes(b6, "again", 0, hw) == replica_bytes(leader, "again", 0, hw)
    got = consume_all(c.bootstrap, "again", 1)
    assert [v for _, v in got[0]] == acked[0]
    c.stop()
