"""process.roles: KRaft's split of controllers and brokers. Controller-only nodes run the
metadata quorum and the controller, on a CONTROLLER listener only; broker-only nodes read the
metadata log from them, register, heartbeat, host partitions and serve clients (and forward
admin requests to the active controller); combined nodes may take controller traffic on a
listener of its own. Real clients (confluent-kafka, kcat) against real processes."""
import os
import subprocess
import time

import pytest

from cluster import Cluster, check_exactly_once, consume_all, high_watermarks, produce_acked as produce, replica_bytes
from conftest import RUNNEL_BIN


def broker_ids(c, b=None):
    md = (c.node_admin(b) if b else c.admin()).list_topics(timeout=10)
    return sorted(md.brokers), md


def wait_for(cond, what, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            v = cond()
            if v:
                return v
        except Exception:
            pass
        time.sleep(0.2)
    raise AssertionError("timed out waiting for " + what)


def test_split_roles_metadata_lists_only_brokers_and_replicates(broker_factory):
    c = Cluster(broker_factory, n=3, controllers=3).start()
    ids, md = broker_ids(c)
    assert ids == [4, 5, 6]
    ports = {b.port for b in c.controllers}
    assert not ports & {m.port for m in md.brokers.values()}, "a controller listener advertised to clients"
    # Every broker reports the same cluster id and an active controller clients can reach.
    assert {c.node_admin(b).list_topics(timeout=10).cluster_id for b in c.brokers} == {md.cluster_id}
    assert md.controller_id in (4, 5, 6)
    out = subprocess.run(["kcat", "-b", c.bootstrap, "-L"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert "3 brokers:" in out.stdout, out.stdout
    for b in c.controllers:
        assert ":%d" % b.port not in out.stdout

    c.create_topic("split", partitions=3, rf=3)
    views = c.wait_leaders("split", 3, isr=3)
    for p in views.topics["split"].partitions.values():
        assert sorted(p.replicas) == [4, 5, 6] and p.leader in (4, 5, 6)
    acked = produce(c.bootstrap, "split", 3, 600, b"m")
    check_exactly_once(acked, consume_all(c.bootstrap, "split", 3))
    hws = high_watermarks(c.bootstrap, "split", 3)
    for p in range(3):
        copies = {replica_bytes(b, "split", p, hws[p]) for b in c.brokers}
        assert len(copies) == 1 and None not in copies, "replicas of split-%d differ" % p
        for b in c.controllers:  # controllers hold no partitions
            assert not os.path.isdir(os.path.join(b.data_dir, "split-%d" % p))

    # kafka-python's admin client too: its CreateTopics and DeleteTopics reach a broker, which
    # forwards them to the active controller.
    from kafka.admin import KafkaAdminClient, NewTopic as KNewTopic
    ka = KafkaAdminClient(bootstrap_servers=c.bootstrap, request_timeout_ms=20000)
    try:
        ka.create_topics([KNewTopic("kp", 2, 3)])
        c.wait_leaders("kp", 2)
        ka.delete_topics(["kp"])
        wait_for(lambda: "kp" not in c.admin().list_topics(timeout=5).topics, "kp to be deleted")
    finally:
        ka.close()
    c.stop()


def test_split_controller_and_leader_failover(broker_factory):
    c = Cluster(broker_factory, n=3, controllers=3, overrides={"min.insync.replicas": "2"}).start()
    c.create_topic("fo", partitions=3, rf=3)
    c.wait_leaders("fo", 3, isr=3)
    acked = produce(c.bootstrap, "fo", 3, 300, b"a")

    active = c.active_controller()
    assert active in (1, 2, 3)
    c.broker(active).kill9()
    new = wait_for(lambda: (lambda n: n if n != active else None)(c.active_controller()), "a new controller")
    assert new in (1, 2, 3) and new != active
    # Admin requests still reach the (new) controller through the brokers.
    c.create_topic("after", partitions=2, rf=3)
    c.wait_leaders("after", 2)

    # A broker-only leader dies: its partitions get new leaders among the others.
    leader = c.leader_of("fo", 0)
    c.broker(leader).kill9()
    wait_for(lambda: c.leader_of("fo", 0) not in (leader, -1), "a new leader of fo-0", timeout=30)
    acked2 = produce(c.bootstrap, "fo", 3, 300, b"b")
    c.broker(leader).start()
    c.wait_leaders("fo", 3, isr=3, timeout=60)
    consumed = consume_all(c.bootstrap, "fo", 3)
    check_exactly_once({p: acked[p] + acked2[p] for p in acked}, consumed)
    c.stop()


def test_broker_catches_up_and_bootstrap_servers_broker_joins(broker_factory):
    # Controllers keep 1 KB of the metadata log for brokers: one further behind (a restarted
    # broker, a new one) gets a snapshot of the image, then entries.
    c = Cluster(broker_factory, n=3, controllers=3, overrides={"metadata.feed.max.bytes": "1024"}).start()
    c.create_topic("cu", partitions=2, rf=3)
    c.wait_leaders("cu", 2, isr=3)
    b6 = c.broker(6)
    b6.stop()
    wait_for(lambda: broker_ids(c)[0] == [4, 5], "node 6 to leave Metadata")
    # What node 6 misses: a topic, a deleted topic, and data.
    c.create_topic("missed", partitions=24, rf=2)  # more than the controllers' feed holds
    acked = produce(c.bootstrap, "cu", 2, 200, b"x")
    b6.start()
    c.wait_brokers(3)
    view = wait_for(lambda: (lambda md: md if "missed" in md.topics else None)(
        c.node_admin(b6).list_topics(timeout=5)), "node 6 to learn the topic it missed")
    assert len(view.topics["missed"].partitions) == 24
    assert "node 6: metadata snapshot at offset" in b6.log_text().split("==== start 1")[1]
    c.wait_leaders("cu", 2, isr=3, timeout=60)
    hws = high_watermarks(c.bootstrap, "cu", 2)
    for p in range(2):
        assert replica_bytes(b6, "cu", p, hws[p]) == replica_bytes(c.broker(4), "cu", p, hws[p])
    check_exactly_once(acked, consume_all(c.bootstrap, "cu", 2))

    # A new broker given only controller.quorum.bootstrap.servers joins, after a controller change.
    c.broker(c.active_controller()).stop()
    b7 = c.add_broker(7, bootstrap=True)
    assert "controller.quorum.voters" not in b7.overrides
    b7.start()
    c.wait_brokers(4)
    assert c.node_admin(b7).list_topics(timeout=10).cluster_id == c.admin().list_topics(timeout=10).cluster_id
    c.create_topic("seven", partitions=4, rf=4)
    views = c.wait_leaders("seven", 4, isr=4)
    assert all(7 in p.replicas for p in views.topics["seven"].partitions.values())
    acked = produce(b7.bootstrap, "seven", 4, 200, b"s")
    check_exactly_once(acked, consume_all(c.bootstrap, "seven", 4))
    c.stop()


def test_combined_nodes_with_a_controller_listener(broker_factory):
    """broker,controller on every node, Raft and the controller RPCs on CONTROLLER://, clients on
    PLAINTEXT://: Metadata advertises only the client listener."""
    from conftest import free_port
    c = Cluster(broker_factory, n=3)
    cports = [free_port() for _ in c.brokers]
    voters = ",".join("%d@127.0.0.1:%d" % (i + 1, p) for i, p in enumerate(cports))
    for b, p in zip(c.brokers, cports):
        b.overrides.update({"listeners": "PLAINTEXT://127.0.0.1:%d,CONTROLLER://127.0.0.1:%d" % (b.port, p),
                            "controller.listener.names": "CONTROLLER",
                            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
                            "controller.quorum.voters": voters})
    c.start()
    ids, md = broker_ids(c)
    assert ids == [1, 2, 3]
    assert {m.port for m in md.brokers.values()} == {b.port for b in c.brokers}
    c.create_topic("two", partitions=2, rf=3)
    c.wait_leaders("two", 2, isr=3)
    acked = produce(c.bootstrap, "two", 2, 200, b"t")
    check_exactly_once(acked, consume_all(c.bootstrap, "two", 2))
    c.stop()


def test_each_listener_advertises_its_own_addresses(broker_factory):
    """INTERNAL and EXTERNAL listeners plus CONTROLLER on combined nodes: a client sees the
    brokers at the listener it came in on; brokers replicate through inter.broker.listener.name."""
    from conftest import free_port
    c = Cluster(broker_factory, n=3)
    ext = [free_port() for _ in c.brokers]
    ctl = [free_port() for _ in c.brokers]
    voters = ",".join("%d@127.0.0.1:%d" % (i + 1, p) for i, p in enumerate(ctl))
    for b, e, p in zip(c.brokers, ext, ctl):
        b.overrides.update({
            "listeners": "INTERNAL://127.0.0.1:%d,EXTERNAL://127.0.0.1:%d,CONTROLLER://127.0.0.1:%d" % (b.port, e, p),
            "listener.security.protocol.map": "INTERNAL:PLAINTEXT,EXTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "inter.broker.listener.name": "INTERNAL", "controller.listener.names": "CONTROLLER",
            "controller.quorum.voters": voters})
    c.start()
    from confluent_kafka.admin import AdminClient
    internal = {m.id: m.port for m in c.admin().list_topics(timeout=10).brokers.values()}
    assert internal == {i + 1: b.port for i, b in enumerate(c.brokers)}
    external_bootstrap = ",".join("127.0.0.1:%d" % e for e in ext)
    external = {m.id: m.port for m in AdminClient({"bootstrap.servers": external_bootstrap})
                .list_topics(timeout=10).brokers.values()}
    assert external == {i + 1: e for i, e in enumerate(ext)}
    c.create_topic("lst", partitions=2, rf=3)
    c.wait_leaders("lst", 2, isr=3)
    acked = produce(external_bootstrap, "lst", 2, 200, b"e")
    check_exactly_once(acked, consume_all(external_bootstrap, "lst", 2))
    hws = high_watermarks(c.bootstrap, "lst", 2)
    for p in range(2):
        assert len({replica_bytes(b, "lst", p, hws[p]) for b in c.brokers}) == 1
    c.stop()


def test_kafka_single_node_kraft_configuration(broker_factory):
    """Kafka's stock single-node KRaft settings: one broker,controller voter at its own
    CONTROLLER listener. Clients see the PLAINTEXT one only; SIGTERM is prompt (a lone voter
    has nobody to hand the metadata leadership to)."""
    from conftest import free_port
    b = broker_factory(name="kraft")
    cport = free_port()
    b.overrides.update({"process.roles": "broker,controller", "node.id": "1",
                        "controller.quorum.voters": "1@127.0.0.1:%d" % cport,
                        "listeners": "PLAINTEXT://:%d,CONTROLLER://:%d" % (b.port, cport),
                        "advertised.listeners": "PLAINTEXT://127.0.0.1:%d" % b.port,
                        "controller.listener.names": "CONTROLLER",
                        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT"})
    b.start()
    acked = produce(b.bootstrap, "k", 1, 100, b"k")
    check_exactly_once(acked, consume_all(b.bootstrap, "k", 1))
    out = subprocess.run(["kcat", "-b", b.bootstrap, "-L"], capture_output=True, text=True, timeout=30)
    assert "1 brokers:" in out.stdout and "127.0.0.1:%d " % b.port in out.stdout, out.stdout
    assert ":%d" % cport not in out.stdout
    t0 = time.time()
    b.stop()
    assert time.time() - t0 < 3, "SIGTERM took %.1f s" % (time.time() - t0)


def test_mixed_combined_voters_and_a_broker_only_node(broker_factory):
    """Three broker,controller voters and a broker-only node that follows their metadata log."""
    c = Cluster(broker_factory, n=3)
    b4 = c.add_broker(4)
    c.start()
    ids, md = broker_ids(c)
    assert ids == [1, 2, 3, 4]
    assert md.controller_id in (1, 2, 3)  # the active controller is a broker here
    c.create_topic("mixed", partitions=4, rf=4)
    views = c.wait_leaders("mixed", 4, isr=4)
    assert all(4 in p.replicas for p in views.topics["mixed"].partitions.values())
    acked = produce(b4.bootstrap, "mixed", 4, 200, b"m")
    b4.kill9()
    acked2 = produce(c.bootstrap, "mixed", 4, 200, b"n")
    b4.start()
    c.wait_leaders("mixed", 4, isr=4, timeout=60)
    check_exactly_once({p: acked[p] + acked2[p] for p in acked}, consume_all(c.bootstrap, "mixed", 4))
    hws = high_watermarks(c.bootstrap, "mixed", 4)
    for p in range(4):
        assert replica_bytes(b4, "mixed", p, hws[p]) == replica_bytes(c.broker(1), "mixed", p, hws[p])
    c.stop()


@pytest.mark.parametrize("overrides,message", [
    ({"process.roles": "controller", "controller.listener.names": "CONTROLLER",
      "listeners": "CONTROLLER://127.0.0.1:{port}"},
     "controller.quorum.voters must list the voters"),
    ({"process.roles": "controller", "controller.quorum.voters": "1@127.0.0.1:{port}"},
     "controller.listener.names must name the listener"),
    ({"process.roles": "broker"}, "set controller.quorum.voters or controller.quorum.bootstrap.servers"),
    ({"process.roles": "broker", "controller.quorum.voters": "1@127.0.0.1:{port}"}, "is a voter but process.roles=broker"),
    ({"process.roles": "broker,controller", "controller.quorum.voters": "1@127.0.0.1:{port}",
      "controller.listener.names": "CONTROLLER"}, "names none of listeners"),
    ({"listeners": "PLAINTEXT://127.0.0.1:{port},SSL://127.0.0.1:1"}, "only PLAINTEXT is supported"),
])
def test_roles_config_refused_with_a_clear_message(tmp_path, overrides, message):
    from conftest import free_port
    port = free_port()
    args = [RUNNEL_BIN, "broker", "--override", "listeners=PLAINTEXT://127.0.0.1:%d" % port,
            "--override", "log.dirs=%s" % (tmp_path / "d"), "--override", "metrics.listeners="]
    for k, v in overrides.items():
        args += ["--override", "%s=%s" % (k, v.format(port=port))]
    out = subprocess.run(args, capture_output=True, text=True, timeout=30)
    assert out.returncode != 0
    assert message in out.stdout + out.stderr, out.stdout + out.stderr
