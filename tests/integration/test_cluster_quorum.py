"""The metadata quorum's voter set at runtime (KIP-853's shape): a one-voter quorum grown into
three controllers without downtime, its first node then killed; DescribeQuorum (through
`runnel cluster quorum --json`) checked at each step; AddRaftVoter refused for a node that has
not caught up and while another change is under way; RemoveRaftVoter of a dead voter and of
the leader itself; the voter set kept across restarts. Real processes, real clients."""
import json
import struct
import subprocess
import time

import kproto as kp
import pytest

from confluent_kafka.admin import AdminClient, NewTopic

from cluster import check_exactly_once, consume_all, produce_acked as produce
from conftest import RUNNEL_BIN

COMMON = {"offsets.topic.num.partitions": "3", "replica.lag.time.max.ms": "3000"}


def cli(*args, timeout=60):
    return subprocess.run([RUNNEL_BIN, "cluster"] + list(args), capture_output=True, text=True, timeout=timeout)


def quorum(bootstrap):
    r = cli("quorum", "-b", bootstrap, "--json", "--timeout", "5000")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def ids(replicas):
    return sorted(r["id"] for r in replicas)


def wait_quorum(bootstrap, pred, what, timeout=30):
    deadline = time.time() + timeout
    q = None
    while time.time() < deadline:
        try:
            q = quorum(bootstrap)
            if pred(q):
                return q
        except (AssertionError, ValueError, subprocess.TimeoutExpired):
            pass
        time.sleep(0.3)
    raise AssertionError("timed out waiting for %s; last DescribeQuorum: %s" % (what, q))


def caught_up_observer(node_id):
    return lambda q: any(o["id"] == node_id and o["lag"] == 0 and o["last_fetch_timestamp"] > 0
                         for o in q["observers"])


def add(bootstrap, node_id, timeout_ms=10000):
    return cli("add-controller", str(node_id), "-b", bootstrap, "--timeout", str(timeout_ms))


def create_topic(bootstrap, name, partitions, rf, timeout=30):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    deadline = time.time() + timeout
    while True:
        try:
            admin.create_topics([NewTopic(name, partitions, rf)], operation_timeout=10)[name].result(timeout=15)
            break
        except Exception as e:  # the controller may still be moving: retried until the deadline
            if "TOPIC_ALREADY_EXISTS" in str(e) or time.time() > deadline:
                if "TOPIC_ALREADY_EXISTS" in str(e):
                    break
                raise
            time.sleep(0.5)
    deadline = time.time() + timeout
    while time.time() < deadline:
        md = admin.list_topics(name, timeout=10).topics.get(name)
        if md and not md.error and len(md.partitions) == partitions and \
                all(p.leader >= 0 for p in md.partitions.values()):
            return
        time.sleep(0.2)
    raise AssertionError("topic %s has no leaders" % name)


@pytest.mark.parametrize("zero_config", [False, True], ids=["voters", "zero-config"])
def test_one_voter_grows_to_three_and_survives_losing_the_first(broker_factory, zero_config):
    n1 = broker_factory(name="node1")
    n1.overrides.update(COMMON)
    if not zero_config:  # else a lone `runnel broker`: node.id 1, a one-voter quorum of itself
        n1.overrides.update({"node.id": "1", "controller.quorum.voters": "1@%s" % n1.bootstrap})
    n1.start()
    q = wait_quorum(n1.bootstrap, lambda q: q["leader"] == 1, "node 1 leading")
    assert ids(q["voters"]) == [1] and q["observers"] == []
    assert q["voters"][0]["host"] == "127.0.0.1" and q["voters"][0]["port"] == n1.port
    conn = kp.Conn(n1.bootstrap)  # ApiVersions lists the three APIs, not the internal join (1002)
    r = kp.api_versions(conn)
    conn.close()
    n = struct.unpack(">i", r[6:10])[0]
    keys = {struct.unpack(">h", r[10 + 6 * i:12 + 6 * i])[0]: struct.unpack(">h", r[14 + 6 * i:16 + 6 * i])[0]
            for i in range(n)}
    assert keys.get(55) == 2 and keys.get(80) == 0 and keys.get(81) == 0 and 1002 not in keys

    # A controller(+broker) started with bootstrap servers joins as an observer (a learner).
    def joiner(node_id, via):
        b = broker_factory(name="node%d" % node_id)
        b.overrides.update(COMMON)
        b.overrides.update({"node.id": str(node_id), "controller.quorum.bootstrap.servers": via.bootstrap})
        return b.start()

    n2 = joiner(2, n1)
    q = wait_quorum(n1.bootstrap, caught_up_observer(2), "node 2 replicating as an observer")
    assert ids(q["voters"]) == [1]
    r = add(n2.bootstrap, 2)  # asked through node 2: the CLI follows DescribeQuorum to the leader
    assert r.returncode == 0, r.stderr
    q = quorum(n1.bootstrap)
    assert ids(q["voters"]) == [1, 2] and q["observers"] == [] and q["leader"] == 1

    # The voter set is in the log: node 1 restarted does not fall back to its static one voter.
    n1.restart()
    q = wait_quorum(n2.bootstrap, lambda q: q["leader"] in (1, 2), "a leader after node 1's restart")
    assert ids(q["voters"]) == [1, 2]

    # Node 3 joins through node 2 (not the leader). Stopped, it falls behind: AddRaftVoter waits
    # for it to catch up, then refuses; meanwhile any other change is refused (one at a time).
    n3 = joiner(3, n2)
    wait_quorum(n1.bootstrap, caught_up_observer(3), "node 3 replicating as an observer")
    n3.pause()
    try:
        create_topic(n1.bootstrap, "while-paused", 1, 1)  # the metadata log moves on without node 3
        slow = subprocess.Popen([RUNNEL_BIN, "cluster", "add-controller", "3", "-b", n1.bootstrap,
                                 "--timeout", "4000"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(1.0)
        busy = add(n1.bootstrap, 2)
        assert busy.returncode == 1 and "REQUEST_TIMED_OUT" in busy.stderr and "one at a time" in busy.stderr, \
            busy.stderr
        out, err = slow.communicate(timeout=30)
        assert slow.returncode == 1 and "REQUEST_TIMED_OUT" in err and "has not caught up" in err, err
    finally:
        n3.resume()
    q = quorum(n1.bootstrap)
    assert ids(q["voters"]) == [1, 2] and 3 in ids(q["observers"])
    dup = add(n1.bootstrap, 2)
    assert dup.returncode == 1 and "DUPLICATE_VOTER" in dup.stderr, dup.stderr
    wait_quorum(n1.bootstrap, caught_up_observer(3), "node 3 caught up again")
    r = add(n3.bootstrap, 3)
    assert r.returncode == 0, r.stderr
    q = quorum(n3.bootstrap)
    assert ids(q["voters"]) == [1, 2, 3] and q["observers"] == []
    assert all(v["lag"] == 0 or v["id"] != q["leader"] for v in q["voters"])
    epoch, leader_before = q["epoch"], q["leader"]
    create_topic(n1.bootstrap, "before", 3, 3)
    acked_before = produce(n1.bootstrap, "before", 3, 300)

    # kill -9 of the original node: the two added controllers elect a leader and serve.
    n1.kill9()
    q = wait_quorum(n2.bootstrap, lambda q: q["leader"] in (2, 3) and (leader_before != 1 or q["epoch"] > epoch),
                    "a leader among nodes 2 and 3")
    assert ids(q["voters"]) == [1, 2, 3]
    bs = "%s,%s" % (n2.bootstrap, n3.bootstrap)
    create_topic(bs, "after", 2, 2)  # the metadata log moves on: node 1 falls behind
    q = quorum(bs)
    dead = [v for v in q["voters"] if v["id"] == 1][0]
    assert dead["log_end_offset"] < q["high_watermark"], q
    acked = produce(bs, "after", 2, 400)
    check_exactly_once(acked, consume_all(bs, "after", 2))
    consumed_before = consume_all(bs, "before", 3)
    check_exactly_once(acked_before, consumed_before)

    # RemoveRaftVoter of the dead node, then of the leader itself (it hands leadership on first).
    r = cli("remove-controller", "1", "-b", bs)
    assert r.returncode == 0, r.stderr
    q = quorum(bs)
    assert ids(q["voters"]) == [2, 3]
    gone = cli("remove-controller", "1", "-b", bs)
    assert gone.returncode == 1 and "VOTER_NOT_FOUND" in gone.stderr, gone.stderr
    leader = q["leader"]
    other = 5 - leader
    r = cli("remove-controller", str(leader), "-b", bs)
    assert r.returncode == 0, r.stderr
    q = wait_quorum(bs, lambda q: ids(q["voters"]) == [other] and q["leader"] == other, "node %d alone" % other)
    # The removed node still runs as a controller: it replicates the log as an observer again.
    wait_quorum(bs, caught_up_observer(leader), "node %d an observer again" % leader)
    last = cli("remove-controller", str(other), "-b", bs)
    assert last.returncode == 1 and "the only voter" in last.stderr, last.stderr
    create_topic(bs, "alone", 1, 2)
    acked_alone = produce(bs, "alone", 1, 50)

    # The lone voter restarted keeps its voter set from the log (not its bootstrap config).
    survivor = n2 if other == 2 else n3
    survivor.restart()
    q = wait_quorum(bs, lambda q: q["leader"] == other, "node %d leading again" % other)
    assert ids(q["voters"]) == [other]
    check_exactly_once(acked_alone, consume_all(bs, "alone", 1))


def test_split_roles_a_controller_joins_and_the_leader_leaves(broker_factory):
    """Controller-only nodes on CONTROLLER listeners and a broker-only node: the broker forwards
    DescribeQuorum and the changes to the active controller; the leader removing itself hands
    its leadership on and stays an observer; the broker follows the new controller."""
    def controller(node_id, extra):
        c = broker_factory(name="controller%d" % node_id)
        c.overrides.update(COMMON)
        c.overrides.update({"node.id": str(node_id), "process.roles": "controller",
                            "listeners": "CONTROLLER://127.0.0.1:%d" % c.port,
                            "controller.listener.names": "CONTROLLER"})
        c.overrides.update(extra)
        return c

    c1 = controller(1, {})
    c1.overrides["controller.quorum.voters"] = "1@%s" % c1.bootstrap
    c1.start()
    b3 = broker_factory(name="broker3")
    b3.overrides.update(COMMON)
    b3.overrides.update({"node.id": "3", "process.roles": "broker", "controller.listener.names": "CONTROLLER",
                         "controller.quorum.bootstrap.servers": c1.bootstrap})
    b3.start()
    c2 = controller(2, {"controller.quorum.bootstrap.servers": c1.bootstrap}).start()
    q = wait_quorum(b3.bootstrap, caught_up_observer(2), "controller 2 an observer (through the broker)")
    assert q["leader"] == 1 and ids(q["voters"]) == [1]
    assert 3 not in ids(q["voters"]) + ids(q["observers"])  # a broker-only node reads the feed: no member
    r = add(b3.bootstrap, 2)
    assert r.returncode == 0, r.stderr
    q = quorum(c2.bootstrap)
    assert ids(q["voters"]) == [1, 2] and q["leader"] == 1
    r = cli("remove-controller", "1", "-b", b3.bootstrap)
    assert r.returncode == 0, r.stderr
    q = wait_quorum(b3.bootstrap, lambda q: q["leader"] == 2 and ids(q["voters"]) == [2], "controller 2 alone")
    wait_quorum(b3.bootstrap, caught_up_observer(1), "controller 1 an observer")
    c1.stop()  # gone for good: RemoveRaftVoter of the observer takes it out of the quorum
    r = cli("remove-controller", "1", "-b", b3.bootstrap)
    assert r.returncode == 0, r.stderr
    q = quorum(b3.bootstrap)
    assert ids(q["voters"]) == [2] and q["observers"] == []
    create_topic(b3.bootstrap, "split", 2, 1)
    acked = produce(b3.bootstrap, "split", 2, 100)
    check_exactly_once(acked, consume_all(b3.bootstrap, "split", 2))
    b3.stop()  # the broker first: its controlled shutdown needs the controller
