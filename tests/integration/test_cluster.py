"""A cluster of real runnel brokers on loopback ports (cluster mode: the
metadata quorum, the controller, replication). Real clients see leaders,
replicas and ISR; acks=all producers keep going across a leader killed with
-9; afterwards every acknowledged message is consumed exactly once and in
order, and the replicas are identical byte for byte up to the high watermark.
Bounded: each fault schedule is a few rounds from a fixed seed."""
import os
import struct
import subprocess
import time

import pytest
from confluent_kafka import KafkaException, Producer
from confluent_kafka.admin import NewTopic

import kproto as kp
from cluster import (Cluster, check_exactly_once, consume_all, high_watermarks, replica_bytes, seeded,
                     wait_for)


def test_clients_see_leaders_replicas_and_isr(broker_factory):
    c = Cluster(broker_factory).start()
    c.create_topic("t3", partitions=3, rf=3)
    md = c.wait_leaders("t3", 3, isr=3)
    assert sorted(md.brokers) == [1, 2, 3]
    assert md.controller_id in (1, 2, 3)
    leaders = set()
    for p in md.topics["t3"].partitions.values():
        assert sorted(p.replicas) == [1, 2, 3]
        assert sorted(p.isrs) == [1, 2, 3]
        assert p.leader in p.replicas
        leaders.add(p.leader)
    assert len(leaders) == 3  # leadership spread, one partition each
    out = subprocess.run(["kcat", "-b", c.bootstrap, "-L", "-t", "t3"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert "3 brokers" in out.stdout
    assert out.stdout.count("replicas: ") == 3 and "isrs: " in out.stdout
    # ApiVersions v0 advertises the cluster admin APIs here (not the node-to-node ones).
    conn = kp.Conn(c.brokers[0].bootstrap)
    r = kp.api_versions(conn)
    conn.close()
    n = struct.unpack(">i", r[6:10])[0]
    keys = {struct.unpack(">h", r[10 + 6 * i:12 + 6 * i])[0] for i in range(n)}
    assert {43, 45, 46} <= keys and not keys & {56, 62, 63, 1000}
    # DescribeCluster v0 (flexible): every broker, the controller.
    conn = kp.Conn(c.brokers[1].bootstrap)
    conn.request(60, 0, b"\x00\x00", header_v2=True)
    r = conn.recv_frame()
    conn.close()
    pos = 4 + 1 + 4
    assert struct.unpack(">h", r[pos:pos + 2])[0] == 0
    pos += 2
    pos += 1 + max(r[pos] - 1, 0)  # error message (null)
    pos += 1 + (r[pos] - 1)  # cluster id
    assert struct.unpack(">i", r[pos:pos + 4])[0] == md.controller_id
    assert r[pos + 4] - 1 == 3  # brokers
    # kafka-python sees the same leaders.
    from kafka import KafkaConsumer
    from kafka.structs import TopicPartition as KTP
    kc = KafkaConsumer(bootstrap_servers=c.bootstrap.split(","), api_version=(2, 5, 0))
    assert kc.partitions_for_topic("t3") == {0, 1, 2}
    for p in md.topics["t3"].partitions.values():
        assert kc._client.cluster.leader_for_partition(KTP("t3", p.id)) == p.leader
    kc.close()
    # The cluster id is the same on every node (clients refuse mixed clusters).
    ids = set()
    for b in c.brokers:
        ids.add(Producer({"bootstrap.servers": b.bootstrap}).list_topics(timeout=10).cluster_id)
    assert len(ids) == 1
    # More replicas than brokers: Kafka's error.
    fs = c.admin().create_topics([NewTopic("t9", 1, 5)])
    with pytest.raises(KafkaException) as e:
        fs["t9"].result(20)
    assert "REPLICATION_FACTOR" in str(e.value).upper()
    # DeleteTopics through the controller: gone from every node's metadata and disk.
    c.admin().delete_topics(["t3"], operation_timeout=20)["t3"].result(30)
    deadline = time.time() + 30
    while time.time() < deadline and any(
            os.path.exists(os.path.join(b.data_dir, "t3-%d" % p)) for b in c.brokers for p in range(3)):
        time.sleep(0.3)
    assert not any(os.path.exists(os.path.join(b.data_dir, "t3-%d" % p)) for b in c.brokers for p in range(3))
    for b in c.brokers:
        assert "t3" not in c.node_admin(b).list_topics(timeout=10).topics
    c.stop()


def produce_for(c, topic, seconds, on_round, acked, errors, start=0):
    p = Producer({"bootstrap.servers": c.bootstrap, "acks": "all", "enable.idempotence": True,
                  "linger.ms": 5, "message.timeout.ms": 60000})

    def cb(err, msg):
        if err:
            errors.append(str(err))
        else:
            acked.setdefault(msg.partition(), []).append(msg.value())

    i, t0 = start, time.time()
    while time.time() - t0 < seconds:
        p.produce(topic, value=b"m%08d" % i, on_delivery=cb)
        i += 1
        p.poll(0.002 if i % 50 else 0)
        on_round(time.time() - t0)
    assert p.flush(90) == 0
    return i


@pytest.mark.parametrize("nodes,seed", [(3, 7), (5, 11)])
def test_faults_mid_produce_exactly_once_and_identical_replicas(broker_factory, nodes, seed):
    """Fault schedule from the seed: kill -9 the leader of a random partition at ~3 s and
    restart it at ~6 s; pause (SIGSTOP) the leader of a random partition at ~8 s and resume it
    (SIGCONT) at ~11 s; an acks=all idempotent producer runs throughout."""
    rnd = seeded(seed)
    c = Cluster(broker_factory, n=nodes, overrides={"min.insync.replicas": "2"}).start()
    c.create_topic("ha", partitions=3, rf=3, config={"min.insync.replicas": "2"})
    acked, errors, events = {}, [], []
    schedule = [(3, "kill"), (6, "start"), (8, "stop"), (11, "cont")]
    state = {"victim": None}

    def on_round(t):
        if not schedule or t < schedule[0][0]:
            return
        _, what = schedule.pop(0)
        if what in ("kill", "stop"):
            state["victim"] = c.leader_of("ha", rnd.randrange(3))
        b = c.broker(state["victim"])
        {"kill": b.kill9, "start": b.start, "stop": b.pause, "cont": b.resume}[what]()
        events.append((what, state["victim"], round(t, 1)))

    sent = produce_for(c, "ha", 14, on_round, acked, errors)
    assert not errors, (errors[:5], events)
    total = sum(len(v) for v in acked.values())
    assert total == sent, (total, sent, events)
    md = c.wait_leaders("ha", 3, isr=3, timeout=60)  # the restarted node caught up and rejoined
    consumed = consume_all(c.bootstrap, "ha", 3)
    check_exactly_once(acked, consumed)
    # Replicas byte for byte up to the high watermark.
    hws = high_watermarks(c.bootstrap, "ha", 3)
    replicas = {p.id: p.replicas for p in md.topics["ha"].partitions.values()}
    for p in range(3):
        deadline = time.time() + 30
        while True:
            copies = [replica_bytes(c.broker(r), "ha", p, hws[p]) for r in replicas[p]]
            if len(set(copies)) == 1 or time.time() > deadline:
                break
            time.sleep(0.5)
        assert len(set(copies)) == 1, "partition %d replicas differ (lengths %s) after %s" % (
            p, [len(x or b"") for x in copies], events)
        assert copies[0], "partition %d is empty" % p
    assert all(p.leader >= 1 for p in md.topics["ha"].partitions.values())
    c.stop()


def test_acks_all_refused_below_min_insync_replicas(broker_factory):
    c = Cluster(broker_factory).start()
    c.create_topic("strict", partitions=1, rf=3, config={"min.insync.replicas": "3"})
    # All three in sync: acks=all works.
    p = Producer({"bootstrap.servers": c.bootstrap, "acks": "all", "message.timeout.ms": 8000})
    errs = []
    p.produce("strict", b"ok", on_delivery=lambda e, m: errs.append(e))
    p.flush(30)
    assert errs == [None]
    # A follower dies: after replica.lag.time.max.ms (3 s) the ISR is 2 < 3.
    leader = c.leader_of("strict", 0)
    follower = next(i for i in (1, 2, 3) if i != leader)
    c.broker(follower).kill9()
    deadline = time.time() + 30
    def isr_size():
        t = c.metadata("strict").topics.get("strict")
        return len(t.partitions[0].isrs) if t and 0 in t.partitions else -1

    while time.time() < deadline and isr_size() != 2:
        time.sleep(0.3)
    assert isr_size() == 2
    errs.clear()
    # The broker's answer, seen without the client's retries (which would end in a local timeout).
    p0 = Producer({"bootstrap.servers": c.bootstrap, "acks": "all", "retries": 0, "message.timeout.ms": 8000})
    p0.produce("strict", b"refused", on_delivery=lambda e, m: errs.append(e))
    p0.flush(30)
    assert errs and errs[0] is not None and "NOT_ENOUGH_REPLICAS" in errs[0].name(), errs
    # acks=1 needs only the leader.
    p1 = Producer({"bootstrap.servers": c.bootstrap, "acks": 1, "message.timeout.ms": 8000})
    errs.clear()
    p1.produce("strict", b"leader-only", on_delivery=lambda e, m: errs.append(e))
    p1.flush(30)
    assert errs == [None]
    c.broker(follower).start()
    c.stop()


def test_sigterm_moves_leadership_away_before_exit(broker_factory):
    # The broker's own bound on the controlled shutdown (the Cluster helper shortens it).
    c = Cluster(broker_factory, overrides={"controlled.shutdown.timeout.ms": "5000"}).start()
    c.create_topic("cs", partitions=3, rf=3)
    leader = c.leader_of("cs", 0)
    acked, errors = {}, []
    t0 = time.time()
    stopped = {}

    def on_round(t):
        if t > 2 and not stopped:
            c.broker(leader).stop()  # SIGTERM: a clean exit (asserted) after a controlled shutdown
            stopped["took"] = time.time() - t0 - t
            md = c.metadata("cs").topics["cs"]
            stopped["leaders"] = [p.leader for p in md.partitions.values()]

    produce_for(c, "cs", 5, on_round, acked, errors)
    assert not errors, errors[:5]
    # Leadership had moved before the node was gone: no partition was left to the session timeout.
    assert leader not in stopped["leaders"], stopped
    assert all(l > 0 for l in stopped["leaders"]), stopped
    c.broker(leader).start()
    check_exactly_once(acked, consume_all(c.bootstrap, "cs", 3))
    c.stop()


def test_last_node_of_a_stopping_cluster_does_not_wait_for_a_grant(broker_factory):
    # Stopped one by one, the last node has no metadata quorum left to grant its controlled
    # shutdown: it says so and exits (cleanly: asserted) instead of waiting out its long bound.
    c = Cluster(broker_factory, overrides={"controlled.shutdown.timeout.ms": "60000"}).start()
    c.create_topic("last", partitions=3, rf=3)
    c.wait_leaders("last", 3, isr=3)
    for b in c.brokers[:-1]:
        b.stop()
    c.brokers[-1].stop(timeout=30)
    assert "controlled shutdown impossible: no metadata quorum" in c.brokers[-1].log_text()


def _cstr(s):
    b = s.encode()
    return kp.uvarint(len(b) + 1) + b


def reassign(conn, topic, partition, replicas):
    """AlterPartitionReassignments v0 (flexible): returns (top error, partition error)."""
    body = struct.pack(">i", 30000) + kp.uvarint(2) + _cstr(topic) + kp.uvarint(2) + struct.pack(">i", partition)
    body += kp.uvarint(len(replicas) + 1) + b"".join(struct.pack(">i", r) for r in replicas) + b"\x00"
    body += b"\x00" + b"\x00"
    conn.request(45, 0, body, header_v2=True)
    r = conn.recv_frame()
    pos = 4 + 1 + 4  # correlation id, header tags, throttle
    top = struct.unpack(">h", r[pos:pos + 2])[0]
    pos += 2
    n = r[pos]  # error message: compact nullable string (0 = null)
    pos += 1 + max(n - 1, 0)
    pos += 1  # topics array length
    name_len = r[pos] - 1
    pos += 1 + name_len + 1  # name, partitions array length
    pos += 4  # partition index
    return top, struct.unpack(">h", r[pos:pos + 2])[0]


def elect_preferred(conn, topic, partition):
    """ElectLeaders v1, preferred: the partition's error code."""
    t = topic.encode()
    body = struct.pack(">b", 0) + struct.pack(">i", 1) + struct.pack(">h", len(t)) + t
    body += struct.pack(">ii", 1, partition) + struct.pack(">i", 30000)
    conn.request(43, 1, body)
    r = conn.recv_frame()
    pos = 4 + 4  # correlation id, throttle
    top = struct.unpack(">h", r[pos:pos + 2])[0]
    assert top == 0, top
    pos += 2 + 4  # results array length
    tl = struct.unpack(">h", r[pos:pos + 2])[0]
    pos += 2 + tl + 4 + 4  # topic, partition results length, partition id
    return struct.unpack(">h", r[pos:pos + 2])[0]


def test_reassignment_moves_a_replica_without_downtime(broker_factory):
    c = Cluster(broker_factory).start()
    c.create_topic("mv", partitions=1, rf=2)
    md = c.wait_leaders("mv", 1, isr=2)
    old = list(md.topics["mv"].partitions[0].replicas)
    new_node = next(i for i in (1, 2, 3) if i not in old)
    target = [old[1], new_node]
    acked, errors = {}, []
    state = {}

    def on_round(t):
        if t > 1 and "sent" not in state:  # to the active controller, while producing
            ctl = c.metadata().controller_id
            conn = kp.Conn(c.broker(ctl).bootstrap)
            state["sent"] = reassign(conn, "mv", 0, target)
            conn.close()

    produce_for(c, "mv", 5, on_round, acked, errors)
    assert state["sent"] == (0, 0), state
    assert not errors, errors[:5]
    deadline = time.time() + 60
    while time.time() < deadline:
        p = c.metadata("mv").topics["mv"].partitions[0]
        if sorted(p.replicas) == sorted(target) and sorted(p.isrs) == sorted(target):
            break
        time.sleep(0.3)
    p = c.metadata("mv").topics["mv"].partitions[0]
    assert sorted(p.replicas) == sorted(target) and sorted(p.isrs) == sorted(target), (p.replicas, p.isrs)
    check_exactly_once(acked, consume_all(c.bootstrap, "mv", 1))
    hw = high_watermarks(c.bootstrap, "mv", 1)[0]
    deadline = time.time() + 30
    while time.time() < deadline and replica_bytes(c.broker(new_node), "mv", 0, hw) != replica_bytes(
            c.broker(old[1]), "mv", 0, hw):
        time.sleep(0.3)
    assert replica_bytes(c.broker(new_node), "mv", 0, hw) == replica_bytes(c.broker(old[1]), "mv", 0, hw)
    deadline = time.time() + 30  # the replica that left deletes its copy
    while time.time() < deadline and os.path.isdir(os.path.join(c.broker(old[0]).data_dir, "mv-0")):
        time.sleep(0.3)
    assert not os.path.isdir(os.path.join(c.broker(old[0]).data_dir, "mv-0"))
    # Preferred-leader election: the first replica leads afterwards.
    ctl = c.metadata().controller_id
    conn = kp.Conn(c.broker(ctl).bootstrap)
    err = elect_preferred(conn, "mv", 0)
    conn.close()
    assert err in (0, 84), err  # 84: ELECTION_NOT_NEEDED
    deadline = time.time() + 30
    while time.time() < deadline:
        p = c.metadata("mv").topics["mv"].partitions[0]
        if p.leader == p.replicas[0]:
            break
        time.sleep(0.3)
    assert p.leader == p.replicas[0], (p.leader, p.replicas)
    c.stop()


def test_full_disk_on_one_follower(broker_factory, tmp_path):
    """A follower whose disk fills refuses the leader's data (cleanly, no crash), drops out of
    the ISR, and acks=all writes go on with the other two; with space back it catches up."""
    mnt = str(tmp_path / "small")
    os.makedirs(mnt, exist_ok=True)
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", mnt], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        c = Cluster(broker_factory, overrides={"log.dir.min.free.bytes": str(1 << 20),
                                               "log.segment.bytes": str(1 << 20)})
        c.broker(3).data_dir = os.path.join(mnt, "data")
        c.start()
        fs = c.admin().create_topics([NewTopic("fd", num_partitions=1, replica_assignment=[[1, 2, 3]],
                                               config={"min.insync.replicas": "2"})])
        fs["fd"].result(20)
        c.wait_leaders("fd", 1, isr=3)
        filler = os.path.join(mnt, "filler")
        with open(filler, "wb") as f:
            f.write(b"\0" * (16 << 20))
        p = Producer({"bootstrap.servers": c.bootstrap, "acks": "all", "linger.ms": 5,
                      "message.timeout.ms": 60000})
        acked, errors = [], []
        for i in range(40_000):  # ~8 MB: more than node 3 has room for
            while True:
                try:
                    p.produce("fd", value=b"%08d" % i + b"z" * 192,
                              on_delivery=lambda e, m: (errors if e else acked).append(str(e) if e else m.value()))
                    break
                except BufferError:
                    p.poll(0.05)
            p.poll(0)
        assert p.flush(120) == 0
        assert not errors, errors[:3]
        assert len(acked) == 40_000
        assert c.broker(3).proc.poll() is None, "node 3 died on a full disk"
        # Out of the ISR once it has lagged replica.lag.time.max.ms (3 s), however fast the writes went.
        wait_for(lambda: 3 not in c.metadata("fd").topics["fd"].partitions[0].isrs, what="node 3 to leave the ISR")
        assert c.broker(3).proc.poll() is None, "node 3 died on a full disk"
        os.unlink(filler)  # space returns: node 3 catches up and rejoins
        c.wait_leaders("fd", 1, isr=3, timeout=90)
        hw = high_watermarks(c.bootstrap, "fd", 1)[0]
        assert hw == 40_000
        deadline = time.time() + 60
        while time.time() < deadline and replica_bytes(c.broker(3), "fd", 0, hw) != replica_bytes(
                c.broker(1), "fd", 0, hw):
            time.sleep(0.5)
        assert replica_bytes(c.broker(3), "fd", 0, hw) == replica_bytes(c.broker(1), "fd", 0, hw)
        c.stop()  # while the tmpfs is mounted
    finally:
        subprocess.run(["umount", "-l", mnt], capture_output=True)


def test_consumer_fetches_from_a_follower_in_its_rack(broker_factory):
    """KIP-392: with the rack-aware replica selector, a consumer in rack r3 is sent to node 3 (a
    follower) and reads everything from it."""
    import urllib.request
    from conftest import free_port
    mport = free_port()
    c = Cluster(broker_factory, overrides={
        "replica.selector.class": "org.apache.kafka.common.replica.RackAwareReplicaSelector"})
    for i, b in enumerate(c.brokers):
        b.overrides["broker.rack"] = "r%d" % (i + 1)
    c.broker(3).overrides["metrics.listeners"] = "127.0.0.1:%d" % mport
    c.start()
    fs = c.admin().create_topics([NewTopic("rk", num_partitions=1, replica_assignment=[[1, 2, 3]])])
    fs["rk"].result(20)
    c.wait_leaders("rk", 1, isr=3)
    p = Producer({"bootstrap.servers": c.bootstrap, "acks": "all", "linger.ms": 5})
    for i in range(1000):
        p.produce("rk", b"v%d" % i)
    assert p.flush(60) == 0

    def fetches_on_node3():
        text = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % mport, timeout=10).read().decode()
        for line in text.splitlines():
            if line.startswith('runnel_requests_total{api="Fetch"}'):
                return int(line.split()[-1])
        return 0

    before = fetches_on_node3()  # node 3 is a follower: nothing fetches from it but consumers
    from confluent_kafka import Consumer, TopicPartition
    cons = Consumer({"bootstrap.servers": c.bootstrap, "group.id": "rk", "client.rack": "r3",
                     "enable.auto.commit": False, "enable.partition.eof": True})
    cons.assign([TopicPartition("rk", 0, 0)])
    got, deadline = [], time.time() + 60
    while time.time() < deadline and len(got) < 1000:
        m = cons.poll(1.0)
        if m is not None and not m.error():
            got.append(m.value())
    cons.close()
    assert got == [b"v%d" % i for i in range(1000)]
    assert fetches_on_node3() > before, "the consumer never fetched from its rack's follower"
    c.stop()
