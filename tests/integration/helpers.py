"""Small helpers shared by integration tests (clients from Debian's packages)."""
import time

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic


def admin(bootstrap):
    return AdminClient({"bootstrap.servers": bootstrap})


def create_topic(bootstrap, name, partitions=1, config=None, timeout=30):
    a = admin(bootstrap)
    fs = a.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1, config=config or {})],
                         operation_timeout=timeout)
    fs[name].result(timeout)


def producer(bootstrap, **conf):
    c = {"bootstrap.servers": bootstrap, "linger.ms": 5}
    c.update(conf)
    return Producer(c)


def produce_all(p, topic, messages, partition=None, timeout=60):
    """messages: iterable of dict(key=, value=, headers=, timestamp=). Returns delivered (partition, offset) list."""
    delivered, errors = [], []

    def cb(err, msg):
        if err:
            errors.append(err)
        else:
            delivered.append((msg.partition(), msg.offset()))

    for m in messages:
        kw = dict(m)
        if partition is not None:
            kw["partition"] = partition
        while True:
            try:
                p.produce(topic, on_delivery=cb, **kw)
                break
            except BufferError:
                p.poll(0.1)
    remaining = p.flush(timeout)
    assert remaining == 0, "%d messages not delivered" % remaining
    assert not errors, errors
    return delivered


def consume_partition(bootstrap, topic, partition, count, start=0, timeout=60, **conf):
    """Read `count` messages from one partition by assignment (no group)."""
    c = {"bootstrap.servers": bootstrap, "group.id": "runnel-test-noop", "enable.auto.commit": False,
         "enable.partition.eof": False}
    c.update(conf)
    consumer = Consumer(c)
    consumer.assign([TopicPartition(topic, partition, start)])
    out = []
    deadline = time.time() + timeout
    try:
        while len(out) < count and time.time() < deadline:
            m = consumer.poll(0.5)
            if m is None:
                continue
            assert m.error() is None, m.error()
            out.append(m)
    finally:
        consumer.close()
    return out


def java_hash(s):
    """Java's String.hashCode (over UTF-16 code units), as Kafka places a transactional id."""
    h = 0
    data = s.encode("utf-16-be")
    for i in range(0, len(data), 2):
        h = (31 * h + ((data[i] << 8) | data[i + 1])) & 0xFFFFFFFF
    return h - (1 << 32) if h >= 1 << 31 else h
