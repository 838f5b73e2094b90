"""Transactions with confluent-kafka (librdkafka) against the real broker:
commit/abort across partitions, read_committed vs read_uncommitted, fencing."""
import time

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition

from helpers import create_topic


def txn_producer(bootstrap, txn_id, **conf):
    c = {"bootstrap.servers": bootstrap, "transactional.id": txn_id, "linger.ms": 5,
         "transaction.timeout.ms": 60000}
    c.update(conf)
    return Producer(c)


def read_all(bootstrap, topic, partitions, isolation, expect, settle=1.5, timeout=60):
    """Every message of the topic's partitions (by assignment), until `expect` arrived and
    nothing more came for `settle` seconds. Returns {partition: [value, ...]}."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "txn-reader", "enable.auto.commit": False,
                  "isolation.level": isolation, "enable.partition.eof": False})
    c.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    out = {p: [] for p in range(partitions)}
    n, deadline, quiet_since = 0, time.time() + timeout, None
    try:
        while time.time() < deadline:
            m = c.poll(0.2)
            if m is None:
                if n >= expect:
                    quiet_since = quiet_since or time.time()
                    if time.time() - quiet_since > settle:
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
    time.sleep(4)  # the coordinator aborts it (checked every second)
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
    time.sleep(4)
    assert "tx-expire: idle for more than transactional.id.expiration.ms" in broker.log_text()


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
