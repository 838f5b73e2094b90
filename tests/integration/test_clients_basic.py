"""Broker core with real clients: topics, produce/consume in every codec, offsets, configs, restart."""
import subprocess
import time

import pytest
from confluent_kafka import Consumer, KafkaException, TopicPartition
from confluent_kafka.admin import ConfigResource, NewPartitions

from helpers import admin, consume_partition, create_topic, produce_all, producer

CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]


def test_admin_create_list_and_metadata(broker):
    create_topic(broker.bootstrap, "orders", partitions=3)
    md = admin(broker.bootstrap).list_topics(timeout=10)
    assert "orders" in md.topics
    t = md.topics["orders"]
    assert sorted(t.partitions) == [0, 1, 2]
    for p in t.partitions.values():
        assert p.leader == 1 and p.replicas == [1] and p.isrs == [1]
    assert list(md.brokers) == [1]
    # creating it again is TOPIC_ALREADY_EXISTS
    with pytest.raises(KafkaException) as e:
        create_topic(broker.bootstrap, "orders", partitions=3)
    assert "already exists" in str(e.value).lower() or "TOPIC_ALREADY_EXISTS" in str(e.value)


def test_invalid_topic_requests(broker):
    a = admin(broker.bootstrap)
    from confluent_kafka.admin import NewTopic
    fs = a.create_topics([NewTopic("bad name!", 1, 1), NewTopic("rf3", 1, 3), NewTopic("badcfg", 1, 1, config={"retention.ms": "soon"}),
                          NewTopic("__cluster_metadata", 1, 1)])
    # Kafka error codes: INVALID_TOPIC_EXCEPTION 17, INVALID_REPLICATION_FACTOR 38, INVALID_CONFIG 40
    for name, code in [("bad name!", 17), ("rf3", 38), ("badcfg", 40), ("__cluster_metadata", 17)]:
        with pytest.raises(KafkaException) as e:
            fs[name].result(10)
        assert e.value.args[0].code() == code, (name, e.value)


@pytest.mark.parametrize("codec", CODECS)
def test_produce_consume_every_codec(broker, codec):
    topic = "codec-" + codec
    create_topic(broker.bootstrap, topic, partitions=2)
    p = producer(broker.bootstrap, **{"compression.type": codec, "batch.num.messages": 100})
    msgs = [dict(key=b"k%d" % i, value=b"value-%d-" % i + b"x" * (i % 50),
                 headers=[("h1", b"v%d" % i), ("h2", None)], timestamp=1_700_000_000_000 + i) for i in range(500)]
    produce_all(p, topic, msgs, partition=1)
    got = consume_partition(broker.bootstrap, topic, 1, 500)
    assert [m.offset() for m in got] == list(range(500))  # dense offsets, in order
    for i, m in enumerate(got):
        assert m.key() == b"k%d" % i
        assert m.value() == msgs[i]["value"]
        assert m.headers() == [("h1", b"v%d" % i), ("h2", None)]
        assert m.timestamp() == (1, 1_700_000_000_000 + i)  # CreateTime


def test_big_value_and_nulls(broker):
    create_topic(broker.bootstrap, "big")
    p = producer(broker.bootstrap)
    big = bytes(range(256)) * 3600  # 921,600 bytes
    produce_all(p, "big", [dict(value=big, key=b"big"), dict(value=None, key=None), dict(value=b"", key=b"")])
    got = consume_partition(broker.bootstrap, "big", 0, 3)
    assert got[0].value() == big and got[0].key() == b"big"
    assert got[1].value() is None and got[1].key() is None
    assert got[2].value() == b"" and got[2].key() == b""


def test_message_too_large_is_rejected(broker):
    create_topic(broker.bootstrap, "small", config={"max.message.bytes": "1000"})
    p = producer(broker.bootstrap)
    with pytest.raises(AssertionError) as e:
        produce_all(p, "small", [dict(value=b"x" * 5000)], timeout=20)
    assert "MSG_SIZE_TOO_LARGE" in str(e.value) or "too large" in str(e.value).lower()


def test_watermarks_and_offsets_for_times(broker):
    create_topic(broker.bootstrap, "times")
    p = producer(broker.bootstrap)
    base = 1_600_000_000_000
    produce_all(p, "times", [dict(value=b"m%d" % i, timestamp=base + i * 1000) for i in range(100)])
    from confluent_kafka import Consumer
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "wm"})
    try:
        lo, hi = c.get_watermark_offsets(TopicPartition("times", 0), timeout=10)
        assert (lo, hi) == (0, 100)
        res = c.offsets_for_times([TopicPartition("times", 0, base + 42_500)], timeout=10)
        assert res[0].offset == 43
        res = c.offsets_for_times([TopicPartition("times", 0, base + 10_000_000)], timeout=10)
        assert res[0].offset in (-1, 100)  # past the end: no offset / the end
        res = c.offsets_for_times([TopicPartition("times", 0, 0)], timeout=10)
        assert res[0].offset == 0
    finally:
        c.close()


def test_describe_and_alter_configs(broker):
    create_topic(broker.bootstrap, "cfg", config={"retention.ms": "3600000"})
    a = admin(broker.bootstrap)
    res = ConfigResource(ConfigResource.Type.TOPIC, "cfg")
    entries = a.describe_configs([res])[res].result(10)
    assert entries["retention.ms"].value == "3600000"
    assert entries["retention.ms"].source == 1  # DYNAMIC_TOPIC_CONFIG
    assert entries["cleanup.policy"].value == "delete"
    assert entries["cleanup.policy"].source == 5  # DEFAULT_CONFIG
    assert entries["segment.bytes"].value == "1073741824"
    # AlterConfigs replaces the topic's whole override set
    res2 = ConfigResource(ConfigResource.Type.TOPIC, "cfg", set_config={"cleanup.policy": "compact", "retention.ms": "3600000"})
    a.alter_configs([res2])[res2].result(10)
    entries = a.describe_configs([res])[res].result(10)
    assert entries["cleanup.policy"].value == "compact"
    assert entries["retention.ms"].value == "3600000"
    # invalid value: INVALID_CONFIG (40)
    res3 = ConfigResource(ConfigResource.Type.TOPIC, "cfg", set_config={"retention.ms": "forever"})
    with pytest.raises(KafkaException) as e:
        a.alter_configs([res3])[res3].result(10)
    assert e.value.args[0].code() == 40
    # broker configs with defaults and sources
    bres = ConfigResource(ConfigResource.Type.BROKER, "1")
    bentries = a.describe_configs([bres])[bres].result(10)
    assert bentries["num.partitions"].value == "1"
    assert bentries["log.dirs"].value == broker.data_dir
    assert bentries["log.dirs"].source == 4  # STATIC_BROKER_CONFIG
    # survives a restart
    broker.restart()
    a2 = admin(broker.bootstrap)
    entries = a2.describe_configs([res])[res].result(10)
    assert entries["cleanup.policy"].value == "compact"


def test_create_partitions_and_delete_topic(broker):
    create_topic(broker.bootstrap, "grow", partitions=1)
    a = admin(broker.bootstrap)
    a.create_partitions([NewPartitions("grow", 4)])["grow"].result(10)
    assert len(a.list_topics(timeout=10).topics["grow"].partitions) == 4
    with pytest.raises(KafkaException) as e:
        a.create_partitions([NewPartitions("grow", 2)])["grow"].result(10)
    assert e.value.args[0].name() == "INVALID_PARTITIONS"
    a.delete_topics(["grow"], operation_timeout=10)["grow"].result(10)
    assert "grow" not in a.list_topics(timeout=10).topics
    broker.restart()
    a2 = admin(broker.bootstrap)
    assert "grow" not in a2.list_topics(timeout=10).topics


def test_idempotent_producer_100k_no_duplicates(broker):
    create_topic(broker.bootstrap, "idem", partitions=3)
    p = producer(broker.bootstrap, **{"enable.idempotence": True, "acks": "all", "linger.ms": 2})
    n = 100_000
    delivered = produce_all(p, "idem", [dict(key=b"%d" % i, value=b"%d" % i) for i in range(n)], timeout=300)
    assert len(delivered) == n
    seen = set()
    total = 0
    for part in range(3):
        count = sum(1 for d in delivered if d[0] == part)
        got = consume_partition(broker.bootstrap, "idem", part, count, timeout=120)
        assert [m.offset() for m in got] == list(range(count))
        for m in got:
            seen.add(m.value())
        total += len(got)
    assert total == n and len(seen) == n


def test_everything_survives_restart(broker):
    create_topic(broker.bootstrap, "durable", partitions=2)
    p = producer(broker.bootstrap, acks="all")
    produce_all(p, "durable", [dict(key=b"a%d" % i, value=b"v%d" % i) for i in range(1000)], partition=0)
    broker.restart()
    got = consume_partition(broker.bootstrap, "durable", 0, 1000)
    assert [m.value() for m in got] == [b"v%d" % i for i in range(1000)]
    # appends continue after the last offset
    produce_all(producer(broker.bootstrap), "durable", [dict(value=b"after")], partition=0)
    got = consume_partition(broker.bootstrap, "durable", 0, 1, start=1000)
    assert got[0].offset() == 1000 and got[0].value() == b"after"


def test_auto_create_on_produce_and_metadata(broker):
    p = producer(broker.bootstrap)
    produce_all(p, "auto-created", [dict(value=b"hello")])
    md = admin(broker.bootstrap).list_topics(timeout=10)
    assert "auto-created" in md.topics


def test_kcat_produce_consume_and_list(broker, tmp_path):
    create_topic(broker.bootstrap, "kcat", partitions=1)
    lines = "".join("key%d:value %d\n" % (i, i) for i in range(200))
    subprocess.run(["kcat", "-b", broker.bootstrap, "-P", "-t", "kcat", "-K:", "-z", "lz4", "-H", "src=kcat"],
                   input=lines.encode(), check=True, timeout=60)
    out = subprocess.run(["kcat", "-b", broker.bootstrap, "-C", "-t", "kcat", "-o", "beginning", "-e",
                          "-f", "%k|%s|%o|%h\n"], check=True, timeout=60, capture_output=True).stdout.decode()
    rows = out.strip().split("\n")
    assert len(rows) == 200
    for i, row in enumerate(rows):
        assert row == "key%d|value %d|%d|src=kcat" % (i, i, i)
    meta = subprocess.run(["kcat", "-b", broker.bootstrap, "-L", "-J"], check=True, timeout=30, capture_output=True).stdout
    import json
    md = json.loads(meta)
    assert any(t["topic"] == "kcat" for t in md["topics"])


def test_kafka_python_produce_consume(broker):
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition as KTP
    create_topic(broker.bootstrap, "kp", partitions=1)
    prod = KafkaProducer(bootstrap_servers=broker.bootstrap, compression_type="gzip", acks="all")
    for i in range(300):
        prod.send("kp", key=b"k%d" % i, value=b"v%d" % i, headers=[("n", b"%d" % i)])
    prod.flush(30)
    prod.close()
    cons = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=None, enable_auto_commit=False,
                         consumer_timeout_ms=10000, auto_offset_reset="earliest")
    tp = KTP("kp", 0)
    cons.assign([tp])
    cons.seek_to_beginning(tp)
    got = []
    for m in cons:
        got.append(m)
        if len(got) == 300:
            break
    cons.close()
    assert [m.offset for m in got] == list(range(300))
    assert [m.value for m in got] == [b"v%d" % i for i in range(300)]
    assert got[7].headers == [("n", b"7")]


def test_log_append_time_topic_stamps_broker_time(broker):
    create_topic(broker.bootstrap, "stamped", config={"message.timestamp.type": "LogAppendTime"})
    before = int(time.time() * 1000)
    produce_all(producer(broker.bootstrap, **{"compression.type": "zstd"}), "stamped",
                [dict(value=b"m%d" % i, timestamp=1_000_000_000_000) for i in range(20)])
    after = int(time.time() * 1000)
    got = consume_partition(broker.bootstrap, "stamped", 0, 20)
    for m in got:
        ts_type, ts = m.timestamp()
        assert ts_type == 2  # TIMESTAMP_LOG_APPEND_TIME
        assert before - 1000 <= ts <= after + 1000


def test_topic_names_colliding_on_dot_and_underscore(broker):
    create_topic(broker.bootstrap, "metrics.cpu")
    with pytest.raises(KafkaException) as e:
        create_topic(broker.bootstrap, "metrics_cpu")
    assert e.value.args[0].code() == 17 and "collides" in e.value.args[0].str()
    with pytest.raises(KafkaException) as e:
        create_topic(broker.bootstrap, "x" * 250)
    assert e.value.args[0].code() == 17


def test_acks_zero_gets_no_response_and_lands(broker):
    create_topic(broker.bootstrap, "fire-and-forget")
    p = producer(broker.bootstrap, acks=0)
    delivered = produce_all(p, "fire-and-forget", [dict(value=b"%d" % i) for i in range(1000)], partition=0)
    assert len(delivered) == 1000  # librdkafka reports acks=0 messages as delivered without offsets
    got = consume_partition(broker.bootstrap, "fire-and-forget", 0, 1000)
    assert [m.value() for m in got] == [b"%d" % i for i in range(1000)]
    # with acks=0 the broker sends nothing back: a raw Produce v3 with acks=0 gets no frame,
    # and the next request on the same connection is answered (correlation ids stay in step)
    from kproto import Conn, api_versions, produce_v3, record_batch
    import struct
    c = Conn(broker.bootstrap)
    c.request(0, 3, produce_v3("fire-and-forget", 0, record_batch([(None, b"raw")]), acks=0))
    corr = c.request(18, 0, b"")
    resp = c.recv_frame()
    assert struct.unpack(">i", resp[:4])[0] == corr
    c.close()


def test_deletion_guards_and_duplicate_names(broker_factory):
    """delete.topic.enable=false refuses every deletion (TOPIC_DELETION_DISABLED), an internal
    topic is never deleted (INVALID_REQUEST), and one CreateTopics naming a topic twice gets
    INVALID_REQUEST for both entries — as Kafka answers."""
    b = broker_factory({"delete.topic.enable": "false"}).start()
    create_topic(b.bootstrap, "kept")
    c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": "g-guard"})
    c.commit(offsets=[TopicPartition("kept", 0, 1)], asynchronous=False)  # __consumer_offsets exists
    c.close()
    a = admin(b.bootstrap)
    with pytest.raises(KafkaException) as e:
        a.delete_topics(["kept"], operation_timeout=10)["kept"].result(20)
    assert e.value.args[0].code() == 73  # TOPIC_DELETION_DISABLED
    b.restart()
    a = admin(b.bootstrap)
    assert "kept" in a.list_topics(timeout=10).topics
    b.overrides["delete.topic.enable"] = "true"
    b.restart()
    a = admin(b.bootstrap)
    with pytest.raises(KafkaException) as e:
        a.delete_topics(["__consumer_offsets"], operation_timeout=10)["__consumer_offsets"].result(20)
    assert e.value.args[0].code() == 42
    a.delete_topics(["kept"], operation_timeout=10)["kept"].result(20)
    # librdkafka cannot read an answer naming a topic twice: kafka-python sends the request
    from kafka.admin import KafkaAdminClient, NewTopic as KNewTopic
    from kafka.errors import InvalidRequestError
    ka = KafkaAdminClient(bootstrap_servers=b.bootstrap)
    try:
        with pytest.raises(InvalidRequestError) as e:
            ka.create_topics([KNewTopic("twice", 1, 1), KNewTopic("twice", 2, 1)])
    finally:
        ka.close()
    assert str(e.value).count("error_code=42, error_message='Create topics request from client contains multiple "
                              "entries for topic twice'") == 2
    assert "twice" not in a.list_topics(timeout=10).topics
