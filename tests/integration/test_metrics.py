"""The Prometheus endpoint, parsed with python3-prometheus-client's text parser."""
import urllib.error
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from conftest import free_port
from helpers import consume_partition, create_topic, produce_all, producer


def scrape(port, path="/metrics"):
    with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=10) as r:
        return r.status, r.read().decode()


def samples(port):
    _, text = scrape(port)
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def get(m, name, **labels):
    return m.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_move_with_traffic_and_health(broker_factory):
    mport = free_port()
    b = broker_factory({"metrics.listeners": "127.0.0.1:%d" % mport}).start()
    status, body = scrape(mport, "/health")
    assert status == 200 and "serving" in body
    before = samples(mport)
    create_topic(b.bootstrap, "metered", partitions=2)
    produce_all(producer(b.bootstrap), "metered", [dict(value=b"x" * 100) for _ in range(500)], partition=1)
    consume_partition(b.bootstrap, "metered", 1, 500)
    after = samples(mport)
    assert get(after, "runnel_topic_messages_in_total", topic="metered") == 500
    assert get(after, "runnel_messages_in_total") - get(before, "runnel_messages_in_total") == 500
    assert get(after, "runnel_partition_log_end_offset", topic="metered", partition="1") == 500
    assert get(after, "runnel_partition_high_watermark", topic="metered", partition="1") == 500
    assert get(after, "runnel_partition_log_end_offset", topic="metered", partition="0") == 0
    assert get(after, "runnel_partition_size_bytes", topic="metered", partition="1") > 500 * 100
    assert get(after, "runnel_topic_bytes_in_total", topic="metered") > 500 * 100
    assert get(after, "runnel_topic_bytes_out_total", topic="metered") >= get(after, "runnel_topic_bytes_in_total", topic="metered")
    assert get(after, "runnel_requests_total", api="Produce") >= 1
    # the test's own, and the group coordinator's for __consumer_offsets (this node asks its own controller)
    internal = b.log_text().count("asking the controller to create")
    assert get(after, "runnel_requests_total", api="CreateTopics") - get(before, "runnel_requests_total", api="CreateTopics") == 1 + internal
    assert get(after, "runnel_request_duration_seconds_count", api="Produce") == get(after, "runnel_requests_total", api="Produce")
    assert get(after, "runnel_fsyncs_total") > get(before, "runnel_fsyncs_total")
    rounds = get(after, "runnel_fsync_round_seconds_count")
    assert rounds > 0 and get(after, "runnel_fsync_round_seconds_bucket", le="+Inf") == rounds
    assert get(after, "process_resident_memory_bytes") > 0
    assert get(after, "process_open_fds") > 0
    assert get(after, "runnel_up") == 1
    try:
        scrape(mport, "/nope")
        assert False, "expected 404"
    except urllib.error.HTTPError as e:
        assert e.code == 404


def test_group_count_and_consumer_lag(broker_factory):
    from confluent_kafka import Consumer, TopicPartition
    mport = free_port()
    b = broker_factory({"metrics.listeners": "127.0.0.1:%d" % mport}).start()
    create_topic(b.bootstrap, "lagging", partitions=1)
    produce_all(producer(b.bootstrap), "lagging", [dict(value=b"%d" % i) for i in range(100)])
    c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": 'we"ird\\group', "enable.auto.commit": False})
    c.commit(offsets=[TopicPartition("lagging", 0, 30)], asynchronous=False)
    c.close()
    m = samples(mport)
    assert get(m, "runnel_groups") == 1
    assert get(m, "runnel_group_committed_offset", group='we"ird\\group', topic="lagging", partition="0") == 30
    assert get(m, "runnel_group_lag", group='we"ird\\group', topic="lagging", partition="0") == 70
    assert get(m, "runnel_group_members", group='we"ird\\group', state="Empty") == 0


def test_health_is_503_while_recovering(broker_factory):
    """After kill -9 the log dir is CRC-checked past the recovery point before serving;
    the metrics listener is up first and says so."""
    import socket
    import subprocess
    import time
    from conftest import RUNNEL_BIN
    mport = free_port()
    b = broker_factory({"metrics.listeners": "127.0.0.1:%d" % mport, "num.recovery.threads.per.data.dir": "1"}).start()
    create_topic(b.bootstrap, "bulk", partitions=4)
    p = producer(b.bootstrap, **{"batch.size": 1000000, "linger.ms": 20})
    for part in range(4):
        produce_all(p, "bulk", [dict(value=b"r" * 1000) for _ in range(60_000)], partition=part)
    b.kill9()
    # start by hand and poll /health as fast as possible
    codes = []
    log = open(b.log_path, "ab")
    proc = subprocess.Popen([RUNNEL_BIN, "broker", "--override", "listeners=PLAINTEXT://127.0.0.1:%d" % b.port,
                             "--override", "log.dirs=%s" % b.data_dir, "--override", "metrics.listeners=127.0.0.1:%d" % mport,
                             "--override", "num.recovery.threads.per.data.dir=1"], stdout=log, stderr=log)
    try:
        deadline = time.time() + 60
        while time.time() < deadline and (not codes or codes[-1] != 200):
            try:
                codes.append(scrape(mport, "/health")[0])
            except urllib.error.HTTPError as e:
                codes.append(e.code)
            except (ConnectionError, OSError):
                time.sleep(0.001)
        assert codes and codes[-1] == 200
        assert 503 in codes, codes[:10]
    finally:
        proc.terminate()
        assert proc.wait(60) == 0
        log.close()
