"""A lone `runnel broker` is a one-voter metadata quorum (KRaft's single-node shape).

Zero-config: no voters set, the node is the quorum's only voter at its own listener,
its topics live in the metadata log, and clients that connect the moment it listens
are served (their requests wait for its first unfencing). A data directory from
before the quorum (topics in runnel.meta) is imported into the metadata log.
"""
import base64
import os
import shutil
import subprocess
import time

from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import ConfigResource

from helpers import admin, consume_partition, create_topic, produce_all, producer


def test_zero_config_node_leads_its_own_quorum_and_serves_at_once(broker_factory):
    b = broker_factory().start()  # returns as soon as the port accepts
    create_topic(b.bootstrap, "now", partitions=2)  # no stall while it registers
    delivered = produce_all(producer(b.bootstrap, acks="all"), "now", [dict(value=b"v%d" % i) for i in range(20)])
    per_part = [sum(1 for q, _ in delivered if q == p) for p in range(2)]
    md = admin(b.bootstrap).list_topics(timeout=10)
    assert list(md.brokers) == [1]
    assert md.controller_id == 1
    assert [p.leader for p in md.topics["now"].partitions.values()] == [1, 1]
    assert os.path.isdir(os.path.join(b.data_dir, "__cluster_metadata-0"))
    assert "metadata quorum of 1 voter(s)" in b.log_text()
    out = subprocess.run(["kcat", "-L", "-b", b.bootstrap, "-t", "now"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert "broker 1 at %s (controller)" % b.bootstrap in out.stdout
    # a clean restart re-registers at once (its own controller: no old session to wait out)
    b.restart()
    t0 = time.time()
    for p in range(2):
        assert len(consume_partition(b.bootstrap, "now", p, per_part[p], timeout=10)) == per_part[p]
    assert time.time() - t0 < 5


def _hex_id(partition_dir):
    with open(os.path.join(partition_dir, "partition.metadata")) as f:
        for line in f:
            if line.startswith("topic_id:"):
                b64 = line.split(":", 1)[1].strip()
                return base64.urlsafe_b64decode(b64 + "=" * (-len(b64) % 4)).hex()
    raise AssertionError("no topic id in " + partition_dir)


def _as_pre_quorum_dir(data_dir, topics, configs):
    """Turn a data directory into what a lone broker wrote before the metadata quorum:
    the topics listed in runnel.meta, no metadata log, no partition.metadata files."""
    lines = open(os.path.join(data_dir, "runnel.meta")).read().splitlines()
    for name, partitions, internal in topics:
        lines.append("topic %s %s %d %d" % (name, _hex_id(os.path.join(data_dir, name + "-0")), partitions,
                                             1 if internal else 0))
        for p in range(partitions):
            os.unlink(os.path.join(data_dir, "%s-%d" % (name, p), "partition.metadata"))
    for name, key, value in configs:
        lines.append("tconfig %s %s %s" % (name, key, value))
    shutil.rmtree(os.path.join(data_dir, "__cluster_metadata-0"))
    os.unlink(os.path.join(data_dir, "replication-offset-checkpoint"))
    with open(os.path.join(data_dir, "runnel.meta"), "w") as f:
        f.write("\n".join(lines) + "\n")


def test_data_dir_from_before_the_quorum_is_imported(broker_factory):
    b = broker_factory({"offsets.topic.num.partitions": "4"}).start()
    create_topic(b.bootstrap, "old", partitions=3, config={"retention.ms": "123456789"})
    msgs = [dict(key=b"k%d" % (i % 7), value=b"m%04d" % i) for i in range(300)]
    delivered = produce_all(producer(b.bootstrap, acks="all"), "old", msgs)
    per_part = {p: sum(1 for q, _ in delivered if q == p) for p in range(3)}
    c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": "keep", "enable.auto.commit": False})
    c.commit(offsets=[TopicPartition("old", 1, 42)], asynchronous=False)
    c.close()
    b.stop()
    _as_pre_quorum_dir(b.data_dir, [("old", 3, False), ("__consumer_offsets", 4, True)],
                       [("old", "retention.ms", "123456789")])

    b.start()
    for p in range(3):
        got = consume_partition(b.bootstrap, "old", p, per_part[p])
        assert [m.offset() for m in got] == list(range(per_part[p]))
    c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": "keep"})
    assert c.committed([TopicPartition("old", 1)], timeout=20)[0].offset == 42
    c.close()
    res = ConfigResource(ConfigResource.Type.TOPIC, "old")
    a = admin(b.bootstrap)
    cfg = a.describe_configs([res])[res].result(20)
    assert cfg["retention.ms"].value == "123456789"
    assert "imported from runnel.meta" in b.log_text()
    assert "topic " not in open(os.path.join(b.data_dir, "runnel.meta")).read()  # now the log's
    # the partitions carry their ids again, and a restart finds the topic in the log
    assert _hex_id(os.path.join(b.data_dir, "old-0"))
    b.restart()
    assert len(consume_partition(b.bootstrap, "old", 0, per_part[0])) == per_part[0]
    produce_all(producer(b.bootstrap, acks="all"), "old", [dict(value=b"after")], partition=2)
    got = consume_partition(b.bootstrap, "old", 2, per_part[2] + 1)
    assert got[-1].value() == b"after" and got[-1].offset() == per_part[2]


def test_controller_listener_serves_only_controller_apis(broker_factory):
    """listeners with a CONTROLLER listener (controller.listener.names): the lone voter sits
    there; clients use the other one; the controller listener exposes KRaft's controller
    APIs only (as Kafka scopes APIs by listener) and closes on anything else."""
    import struct

    import kproto as kp
    from conftest import free_port
    b = broker_factory()
    ctl_port = free_port()
    b.overrides.update({"listeners": "PLAINTEXT://127.0.0.1:%d,CONTROLLER://127.0.0.1:%d" % (b.port, ctl_port),
                        "controller.listener.names": "CONTROLLER"})
    b.start()
    create_topic(b.bootstrap, "scoped")
    md = admin(b.bootstrap).list_topics(timeout=10)
    assert [(x.host, x.port) for x in md.brokers.values()] == [("127.0.0.1", b.port)]

    ctl = "127.0.0.1:%d" % ctl_port
    conn = kp.Conn(ctl)
    r = kp.api_versions(conn)
    n = struct.unpack(">i", r[6:10])[0]
    keys = {struct.unpack(">h", r[10 + 6 * i:12 + 6 * i])[0] for i in range(n)}
    assert {18, 19, 20, 32, 33, 37, 44, 60} <= keys
    assert not keys & {0, 1, 2, 3, 8, 9, 10, 11}  # Produce, Fetch, ListOffsets, Metadata, offsets, groups
    conn.request(3, 1, struct.pack(">i", 0))  # Metadata v1 on the controller listener
    assert conn.is_closed()
    assert "Metadata is not served on controller listener CONTROLLER" in b.log_text()
    # CreateTopics is a controller API: an admin client may use that listener for it
    conn = kp.Conn(ctl)
    body = struct.pack(">i", 1) + kp.kstr("via-ctl") + struct.pack(">ihii", 1, 1, 0, 0) + struct.pack(">i", 10000)
    conn.request(19, 1, body + b"\x00")  # CreateTopics v1: topics, timeout, validate_only
    r = conn.recv_frame()
    assert struct.unpack(">i", r[4:8])[0] == 1
    ln = struct.unpack(">h", r[8:10])[0]
    assert r[10:10 + ln] == b"via-ctl" and struct.unpack(">h", r[10 + ln:12 + ln])[0] == 0
    conn.close()
    assert "via-ctl" in admin(b.bootstrap).list_topics(timeout=10).topics
