"""Consumer groups with real clients: confluent-kafka (librdkafka 2.0.2), kafka-python 2.0.2, kcat -G.

Every version of every group API and each of Kafka's error codes is covered at
the wire level by tests/unit/test_group_wire.c; these tests check that the
clients people use get what they expect.
"""
import re
import subprocess
import time

import pytest
from confluent_kafka import Consumer, KafkaError, TopicPartition

from group_helpers import ChildConsumer, heartbeat_v0, join_v0, offset_delete, sync_v0, wait_for
from helpers import admin, create_topic, produce_all, producer

GROUP_CONF = {"session.timeout.ms": 6000, "heartbeat.interval.ms": 500, "auto.offset.reset": "earliest",
              "enable.auto.commit": False}


def consumer(bootstrap, group, **conf):
    c = {"bootstrap.servers": bootstrap, "group.id": group}
    c.update(GROUP_CONF)
    c.update(conf)
    return Consumer(c)


def poll_until(consumers, cond, timeout=30, sink=None):
    deadline = time.time() + timeout
    while time.time() < deadline:
        for i, c in enumerate(consumers):
            m = c.poll(0.05)
            if m is not None and not m.error() and sink is not None:
                sink.append((i, m.partition(), m.offset(), m.value()))
                c.commit(message=m, asynchronous=False)
        if cond():
            return True
    raise AssertionError("timed out")


def rebalances(broker):
    return len(re.findall(r"preparing to rebalance", broker.log_text()))


def test_three_consumers_split_partitions(broker):
    create_topic(broker.bootstrap, "split", partitions=6)
    cs = [consumer(broker.bootstrap, "split-g") for _ in range(3)]
    for c in cs:
        c.subscribe(["split"])
    poll_until(cs, lambda: all(len(c.assignment()) == 2 for c in cs))
    parts = [sorted(tp.partition for tp in c.assignment()) for c in cs]
    assert sorted(p for ps in parts for p in ps) == list(range(6)), parts
    msgs = [dict(key=b"k%d" % i, value=b"v%d" % i) for i in range(600)]
    produce_all(producer(broker.bootstrap), "split", [dict(m, partition=i % 6) for i, m in enumerate(msgs)])
    got = []
    poll_until(cs, lambda: len(got) >= 600, sink=got, timeout=60)
    for c in cs:
        c.poll(0.2)
    values = [v for _, _, _, v in got]
    assert len(values) == 600 and len(set(values)) == 600  # nothing twice, nothing missed
    for i, p, _, _ in got:  # each message came from its reader's partitions
        assert p in parts[i]
    committed = cs[0].committed([TopicPartition("split", p) for p in range(6)], timeout=10)
    assert [tp.offset for tp in committed] == [100] * 6
    for c in cs:
        c.close()
    desc = admin(broker.bootstrap).list_groups("split-g", timeout=10)
    assert desc[0].state == "Empty"


def test_killed_member_partitions_move_within_session_timeout(broker):
    create_topic(broker.bootstrap, "kill", partitions=6)
    kids = [ChildConsumer(broker.bootstrap, "kill-g", "kill") for _ in range(3)]
    try:
        wait_for(lambda: all(len(k.parts()) == 2 for k in kids), timeout=40, what="three members with 2 partitions")
        victim = kids[0]
        moved = victim.parts()
        t0 = time.time()
        victim.kill()
        rest = kids[1:]
        wait_for(lambda: set.union(*[k.parts() for k in rest]) == set(range(6)), timeout=20,
                 what="survivors owning every partition")
        elapsed = time.time() - t0
        assert elapsed < 6.0 + 4.0, elapsed  # session timeout (6 s) plus one rebalance
        assert elapsed > 3.0, elapsed  # not before the session could have expired
        assert moved <= set.union(*[k.parts() for k in rest])
        # the survivors keep consuming, without duplicates
        produce_all(producer(broker.bootstrap), "kill", [dict(value=b"m%d" % i, partition=i % 6) for i in range(120)])
        wait_for(lambda: sum(len(k.messages) for k in rest) >= 120, timeout=30, what="messages")
        vals = [v for k in rest for (_, _, v) in k.messages]
        assert sorted(vals) == sorted("m%d" % i for i in range(120))
    finally:
        for k in kids:
            k.stop()


def test_static_member_restarts_without_rebalance(broker):
    create_topic(broker.bootstrap, "static", partitions=4)
    conf = {"session.timeout.ms": 10000}
    a = ChildConsumer(broker.bootstrap, "static-g", "static", **{"group.instance.id": "inst-a"}, **conf)
    b = ChildConsumer(broker.bootstrap, "static-g", "static", **{"group.instance.id": "inst-b"}, **conf)
    b2 = None
    try:
        wait_for(lambda: len(a.parts()) == 2 and len(b.parts()) == 2, timeout=40, what="two static members")
        time.sleep(1.5)  # let a late heartbeat-driven rejoin settle, if any
        before = rebalances(broker)
        a_assigns, a_revokes, b_parts = a.assigns, a.revokes, b.parts()
        b.kill()  # a crash: no LeaveGroup
        b2 = ChildConsumer(broker.bootstrap, "static-g", "static", **{"group.instance.id": "inst-b"}, **conf)
        wait_for(lambda: b2.parts() == b_parts, timeout=20, what="the restarted member's old partitions")
        time.sleep(2)
        assert rebalances(broker) == before  # the group never rebalanced
        # nothing moved for the other member either (its first join may have seen a revoke
        # when b joined; that happened before the snapshot)
        assert a.assigns == a_assigns and a.revokes == a_revokes
        g = admin(broker.bootstrap).list_groups("static-g", timeout=10)[0]
        assert g.state == "Stable" and len(g.members) == 2
    finally:
        for k in (a, b, b2):
            if k:
                k.stop()


def test_cooperative_sticky_moves_only_what_it_must(broker):
    create_topic(broker.bootstrap, "coop", partitions=6)
    events = {0: [], 1: [], 2: []}

    def cbs(i):
        def on_assign(c, parts):
            events[i].append(("assign", sorted(p.partition for p in parts)))

        def on_revoke(c, parts):
            events[i].append(("revoke", sorted(p.partition for p in parts)))
        return on_assign, on_revoke

    conf = {"partition.assignment.strategy": "cooperative-sticky"}
    cs = []
    for i in range(2):
        c = consumer(broker.bootstrap, "coop-g", **conf)
        on_a, on_r = cbs(i)
        c.subscribe(["coop"], on_assign=on_a, on_revoke=on_r)
        cs.append(c)
    poll_until(cs, lambda: all(len(c.assignment()) == 3 for c in cs), timeout=40)
    before = [set(tp.partition for tp in c.assignment()) for c in cs]
    for i in range(2):
        events[i].clear()
    c3 = consumer(broker.bootstrap, "coop-g", **conf)
    on_a, on_r = cbs(2)
    c3.subscribe(["coop"], on_assign=on_a, on_revoke=on_r)
    cs.append(c3)
    poll_until(cs, lambda: all(len(c.assignment()) == 2 for c in cs), timeout=40)
    after = [set(tp.partition for tp in c.assignment()) for c in cs]
    revoked = [p for i in range(2) for kind, ps in events[i] if kind == "revoke" for p in ps]
    assert len(revoked) == 2, events  # exactly the two partitions that moved
    assert after[0] <= before[0] and after[1] <= before[1]  # the others stayed where they were
    assert set(revoked) == after[2]
    for c in cs:
        c.close()


def test_offsets_with_metadata_survive_restart_and_kill9(broker):
    from kafka import KafkaAdminClient, KafkaConsumer
    from kafka import TopicPartition as KTP
    from kafka.structs import OffsetAndMetadata

    create_topic(broker.bootstrap, "durable", partitions=3)
    kc = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id="dur-g", enable_auto_commit=False)
    kc.commit({KTP("durable", 0): OffsetAndMetadata(42, "checkpoint-α"), KTP("durable", 1): OffsetAndMetadata(7, "")})
    kc.close()
    c = consumer(broker.bootstrap, "dur-g2")
    c.commit(offsets=[TopicPartition("durable", 2, 99)], asynchronous=False)
    c.close()

    def check():
        a = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
        try:
            got = a.list_consumer_group_offsets("dur-g")
        finally:
            a.close()
        assert got[KTP("durable", 0)] == OffsetAndMetadata(42, "checkpoint-α")
        assert got[KTP("durable", 1)] == OffsetAndMetadata(7, "")
        c = consumer(broker.bootstrap, "dur-g2")
        assert c.committed([TopicPartition("durable", 2)], timeout=10)[0].offset == 99
        c.close()

    check()
    broker.restart()
    check()
    broker.kill9()
    broker.start()
    check()
    last_start = broker.log_text().split("==== start")[-1]
    loads = dict(re.findall(r"__consumer_offsets-(\d+): leader at epoch \d+; loaded (\d+) group\(s\)", last_start))
    assert sum(int(n) for n in loads.values()) == 2  # the last load of each partition: both groups replayed


def test_list_and_describe_groups(broker):
    from kafka import KafkaAdminClient

    create_topic(broker.bootstrap, "desc", partitions=4)
    cs = [consumer(broker.bootstrap, "desc-g", **{"client.id": "client-%d" % i}) for i in range(2)]
    for c in cs:
        c.subscribe(["desc"])
    poll_until(cs, lambda: all(len(c.assignment()) == 2 for c in cs))
    groups = admin(broker.bootstrap).list_groups(timeout=10)
    g = [x for x in groups if x.id == "desc-g"][0]
    assert g.state == "Stable" and g.protocol_type == "consumer" and g.protocol == "range"
    assert sorted(m.client_id for m in g.members) == ["client-0", "client-1"]
    assert all(m.client_host == "/127.0.0.1" for m in g.members)
    assert all(len(m.assignment) > 0 and len(m.metadata) > 0 for m in g.members)
    ka = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    try:
        listed = dict(ka.list_consumer_groups())
        assert listed.get("desc-g") == "consumer"
        d = ka.describe_consumer_groups(["desc-g"])[0]
        assert d.state == "Stable" and d.protocol == "range"
        owned = sorted(p for m in d.members for t, ps in m.member_assignment.assignment for p in ps)
        assert owned == [0, 1, 2, 3]
    finally:
        ka.close()
    for c in cs:
        c.close()


def test_delete_groups_and_offset_delete(broker):
    from kafka import KafkaAdminClient
    from kafka.errors import GroupIdNotFoundError, NonEmptyGroupError

    create_topic(broker.bootstrap, "del", partitions=2)
    create_topic(broker.bootstrap, "del2", partitions=1)
    c = consumer(broker.bootstrap, "del-g")
    c.subscribe(["del"])
    poll_until([c], lambda: len(c.assignment()) == 2)
    c.commit(offsets=[TopicPartition("del", 0, 5), TopicPartition("del", 1, 6), TopicPartition("del2", 0, 7)],
             asynchronous=False)
    # a live group: OffsetDelete refuses its subscribed topic, DeleteGroups refuses the group
    err, parts = offset_delete(broker.bootstrap, "del-g", {"del": [0], "del2": [0]})
    assert err == 0
    assert parts == {("del", 0): 86, ("del2", 0): 0}  # GROUP_SUBSCRIBED_TO_TOPIC, deleted
    ka = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    try:
        res = dict(ka.delete_consumer_groups(["del-g"]))
        assert res["del-g"] is NonEmptyGroupError, res
        c.close()
        err, parts = offset_delete(broker.bootstrap, "del-g", {"del": [1]})
        assert (err, parts) == (0, {("del", 1): 0})
        c2 = consumer(broker.bootstrap, "del-g")
        got = c2.committed([TopicPartition("del", 0), TopicPartition("del", 1), TopicPartition("del2", 0)], timeout=10)
        assert [tp.offset for tp in got] == [5, -1001, -1001]
        c2.close()
        res = dict(ka.delete_consumer_groups(["del-g", "never-was"]))
        assert res["del-g"].__name__ == "NoError", res
        assert res["never-was"] is GroupIdNotFoundError, res
        assert offset_delete(broker.bootstrap, "del-g", {"del": [0]})[0] == 69  # GROUP_ID_NOT_FOUND
        assert "del-g" not in dict(ka.list_consumer_groups())
    finally:
        ka.close()
    broker.restart()  # the deletion is durable
    c3 = consumer(broker.bootstrap, "del-g")
    assert c3.committed([TopicPartition("del", 0)], timeout=10)[0].offset == -1001
    c3.close()


def test_unknown_group_and_stale_member_errors(broker):
    create_topic(broker.bootstrap, "err", partitions=1)
    c = consumer(broker.bootstrap, "err-g")
    assert c.committed([TopicPartition("err", 0)], timeout=10)[0].offset == -1001  # unknown group: no offset
    c.close()
    assert heartbeat_v0(broker.bootstrap, "nope-g", 1, "m-1") == 25  # UNKNOWN_MEMBER_ID
    err, gen, member, leader = join_v0(broker.bootstrap, "err-g2")
    assert (err, gen) == (0, 1) and member == leader
    assert sync_v0(broker.bootstrap, "err-g2", 1, member, {member: b"a"}) == (0, b"a")
    assert heartbeat_v0(broker.bootstrap, "err-g2", 5, member) == 22  # ILLEGAL_GENERATION
    assert heartbeat_v0(broker.bootstrap, "err-g2", 1, "stale") == 25  # UNKNOWN_MEMBER_ID
    assert heartbeat_v0(broker.bootstrap, "err-g2", 1, member) == 0
    assert sync_v0(broker.bootstrap, "err-g2", 0, member, {})[0] == 22
    assert join_v0(broker.bootstrap, "err-g2", member_id="stale")[0] == 25
    assert join_v0(broker.bootstrap, "", member_id="")[0] == 24  # INVALID_GROUP_ID
    assert join_v0(broker.bootstrap, "err-g2", session_ms=1)[0] == 26  # INVALID_SESSION_TIMEOUT


def test_kafka_python_group_consumers(broker):
    import threading

    from kafka import KafkaConsumer
    from kafka import TopicPartition as KTP

    create_topic(broker.bootstrap, "kp", partitions=4)
    # kafka-python joins inside poll() and blocks there: one thread per consumer
    stop = threading.Event()
    got, lock = [], threading.Lock()
    kcs = [KafkaConsumer("kp", bootstrap_servers=broker.bootstrap, group_id="kp-g", auto_offset_reset="earliest",
                         enable_auto_commit=False, session_timeout_ms=6000, heartbeat_interval_ms=500,
                         max_poll_interval_ms=20000) for _ in range(2)]

    def run(k):
        while not stop.is_set():
            recs = k.poll(timeout_ms=100)
            with lock:
                got.extend(r.value for rs in recs.values() for r in rs)
            if recs:
                k.commit()

    threads = [threading.Thread(target=run, args=(k,), daemon=True) for k in kcs]
    for t in threads:
        t.start()
    try:
        wait_for(lambda: all(len(k.assignment()) == 2 for k in kcs), timeout=60, what="two kafka-python members")
        parts = [sorted(tp.partition for tp in k.assignment()) for k in kcs]
        assert sorted(parts[0] + parts[1]) == [0, 1, 2, 3], parts
        produce_all(producer(broker.bootstrap), "kp", [dict(value=b"kp%d" % i, partition=i % 4) for i in range(200)])
        wait_for(lambda: len(got) >= 200, timeout=60, what="200 messages")
        time.sleep(0.5)
        with lock:
            assert sorted(got) == sorted(b"kp%d" % i for i in range(200))  # nothing twice, nothing missed
    finally:
        stop.set()
        for t in threads:
            t.join(10)
    assert [kcs[0].committed(KTP("kp", p)) for p in range(4)] == [50, 50, 50, 50]
    for k in kcs:
        k.close()


def test_kcat_balanced_consumer(broker):
    create_topic(broker.bootstrap, "kc", partitions=3)
    produce_all(producer(broker.bootstrap), "kc", [dict(value=b"kc%d" % i, partition=i % 3) for i in range(90)])
    out = subprocess.run(["kcat", "-b", broker.bootstrap, "-G", "kc-g", "-o", "beginning", "-e", "-q",
                          "-f", "%p %o %s\n", "-X", "session.timeout.ms=6000", "kc"],
                         capture_output=True, timeout=60)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.decode().split()
    values = sorted(x for x in lines if x.startswith("kc"))
    assert values == sorted("kc%d" % i for i in range(90))
    # kcat commits as it goes: the group's offsets reach the end
    c = consumer(broker.bootstrap, "kc-g")
    got = wait_for(lambda: [tp.offset for tp in c.committed([TopicPartition("kc", p) for p in range(3)], timeout=10)]
                   if all(tp.offset == 30 for tp in c.committed([TopicPartition("kc", p) for p in range(3)], timeout=10))
                   else None, timeout=10, what="kcat's commits")
    assert got == [30, 30, 30]
    c.close()


@pytest.fixture(scope="module", autouse=True)
def retention_start(tmp_path_factory):
    """The first half of test_offsets_retention_expires_empty_group, run as the module starts:
    its broker, and an offset committed for an empty group, whose minute of retention (the
    shortest there is) then runs out while the other tests run. A failure here is kept for
    that test to raise (the module's other tests do not depend on it)."""
    from conftest import Broker
    d = tmp_path_factory.mktemp("retention")
    b = Broker(d / "data-broker", d / "broker.log",
               {"offsets.retention.minutes": 1, "offsets.retention.check.interval.ms": 500})
    state = {"broker": b}
    try:
        b.start()
        create_topic(b.bootstrap, "ret", partitions=1)
        c = consumer(b.bootstrap, "ret-g")
        c.commit(offsets=[TopicPartition("ret", 0, 3)], asynchronous=False)
        state["committed"] = c.committed([TopicPartition("ret", 0)], timeout=10)[0].offset
        c.close()
    except Exception as e:  # noqa: BLE001 - raised by the test
        state["error"] = e
    yield state
    if b.proc is not None:
        b.stop()


def test_offsets_retention_expires_empty_group(retention_start):
    if "error" in retention_start:
        raise retention_start["error"]
    b = retention_start["broker"]
    assert retention_start["committed"] == 3
    # a minute is the smallest retention: check the record is there, and the log line after expiry
    wait_for(lambda: "expired 1 offset(s)" in b.log_text(), timeout=75, interval=0.5, what="offset expiry")
    c = consumer(b.bootstrap, "ret-g")
    assert c.committed([TopicPartition("ret", 0)], timeout=10)[0].offset == -1001
    c.close()
    b.restart()  # the expiry was written as a tombstone
    c = consumer(b.bootstrap, "ret-g")
    assert c.committed([TopicPartition("ret", 0)], timeout=10)[0].offset == -1001
    c.close()
