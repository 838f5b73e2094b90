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
