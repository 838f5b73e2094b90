"""Old clients (message format v0/v1 through Produce <= v2 / Fetch <= v3) and broker configuration checks."""
import os
import subprocess

import pytest

from conftest import RUNNEL_BIN, free_port
from helpers import consume_partition, create_topic, produce_all, producer


# magic 0 readers need the old-Kafka lz4 framing (xxhash in kafka-python): gzip there.
@pytest.mark.parametrize("api_version,new_codec", [((0, 9), "gzip"), ((0, 10, 1), "lz4")])
def test_old_message_formats_round_trip(broker, api_version, new_codec):
    """kafka-python pinned to an old protocol writes magic 0/1 message sets; the broker stores v2
    batches and converts back for the old fetch versions, and new clients read the same data."""
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition as KTP
    topic = "legacy-%s" % "-".join(map(str, api_version))
    create_topic(broker.bootstrap, topic)
    prod = KafkaProducer(bootstrap_servers=broker.bootstrap, api_version=api_version, compression_type="gzip")
    for i in range(50):
        prod.send(topic, key=b"k%d" % i, value=b"old-%d" % i)
    prod.flush(30)
    prod.close()
    cons = KafkaConsumer(bootstrap_servers=broker.bootstrap, api_version=api_version, group_id=None,
                         consumer_timeout_ms=10000, enable_auto_commit=False)
    tp = KTP(topic, 0)
    cons.assign([tp])
    cons.seek_to_beginning(tp)
    got = []
    for m in cons:
        got.append(m)
        if len(got) == 50:
            break
    cons.close()
    assert [(m.offset, m.key, m.value) for m in got] == [(i, b"k%d" % i, b"old-%d" % i) for i in range(50)]
    # a modern client reads the same records from the v2 batches on disk
    new = consume_partition(broker.bootstrap, topic, 0, 50)
    assert [m.value() for m in new] == [b"old-%d" % i for i in range(50)]
    # and an old consumer reads what a modern producer wrote (v2 batches down-converted)
    produce_all(producer(broker.bootstrap, **{"compression.type": new_codec}), topic, [dict(value=b"new-%d" % i) for i in range(10)])
    cons = KafkaConsumer(bootstrap_servers=broker.bootstrap, api_version=api_version, group_id=None,
                         consumer_timeout_ms=10000, enable_auto_commit=False)
    cons.assign([tp])
    cons.seek(tp, 50)
    got = []
    for m in cons:
        got.append(m)
        if len(got) == 10:
            break
    cons.close()
    assert [m.value for m in got] == [b"new-%d" % i for i in range(10)]


def run_broker_args(*args, timeout=20):
    return subprocess.run([RUNNEL_BIN, "broker", *args], capture_output=True, timeout=timeout)


def test_invalid_config_refuses_to_start_naming_the_key(tmp_path):
    r = run_broker_args("--override", "num.partitions=zero", "--override", "log.dirs=%s" % tmp_path)
    assert r.returncode != 0
    assert b"num.partitions" in r.stderr
    r = run_broker_args("--override", "log.flush.interval.messages=0", "--override", "log.dirs=%s" % tmp_path)
    assert r.returncode != 0 and b"log.flush.interval.messages" in r.stderr


def test_properties_file_unknown_key_warned_and_check_config(tmp_path):
    props = tmp_path / "server.properties"
    port = free_port()
    props.write_text("# a comment\nlisteners=PLAINTEXT://127.0.0.1:%d\nlog.dirs=%s\nnum.partitions = 3\n"
                     "no.such.key=1\nlog.retention.hours=1\n" % (port, tmp_path / "d"))
    r = run_broker_args("--check-config", str(props))
    assert r.returncode == 0, r.stderr
    out = r.stdout.decode()
    assert "num.partitions=3\n" in out
    assert "log.retention.ms=3600000" in out  # derived from hours
    assert b"no.such.key" in r.stderr  # warned


def test_sigint_and_sigterm_clean_shutdown_then_fast_clean_start(broker_factory):
    b = broker_factory().start()
    create_topic(b.bootstrap, "clean", partitions=4)
    produce_all(producer(b.bootstrap), "clean", [dict(value=b"x")], partition=0)
    import signal
    b.stop(signal.SIGINT)
    b.start()
    log = b.log_text().split("==== start 1")[1]
    assert "(clean shutdown)" in log, log
    got = consume_partition(b.bootstrap, "clean", 0, 1)
    assert got[0].value() == b"x"
    b.stop(signal.SIGTERM)
