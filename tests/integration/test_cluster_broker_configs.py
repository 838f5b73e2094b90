"""Dynamic broker configs in cluster mode: AlterConfigs / IncrementalAlterConfigs on BROKER
resources ("" the cluster default, "<id>" one broker) are decided by the active controller and
written to the metadata log; every node applies the ones for its own id and the default, which
then take effect as a single node's do (message.max.bytes refuses bigger batches on that
node's partitions, auto.create.topics.enable and num.partitions shape auto-creation) and show in
DescribeConfigs with their source on every node. They survive a node's restart (replay, or a
snapshot for a broker-only node) and a controller failover. A request mixing topics, brokers
and broker loggers is answered per resource; loggers stay with the node asked."""
import json
import os
import struct
import subprocess
import time

from confluent_kafka import KafkaError, Producer
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

import kproto as kp
from cluster import Cluster, wait_for
from conftest import RUNNEL_BIN

TOPIC, BROKER, BROKER_LOGGER = 2, 4, 8
SET, DELETE = 0, 1
DYNAMIC_BROKER, DYNAMIC_DEFAULT, STATIC, DEFAULT = 2, 3, 4, 5
BIG = 100_000  # bytes of one record: above 50,000, below 200,000 and Kafka's default


# ---- raw requests to one chosen node -----------------------------------------------

call, _str = kp.call, kp.read_str


def incremental(bootstrap, resources, validate_only=False):
    """IncrementalAlterConfigs v0: resources = [(type, name, [(key, op, value)])]. Returns
    [(error code, message, type, name)] in the response's order."""
    body = struct.pack(">i", len(resources))
    for rtype, name, ops in resources:
        body += struct.pack(">b", rtype) + kp.kstr(name) + struct.pack(">i", len(ops))
        for key, op, value in ops:
            body += kp.kstr(key) + struct.pack(">b", op) + kp.kstr(value)
    body += struct.pack(">?", validate_only)
    r = call(bootstrap, 44, 0, body)
    pos = 4 + 4  # correlation id, throttle
    n = struct.unpack(">i", r[pos:pos + 4])[0]
    pos += 4
    out = []
    for _ in range(n):
        code = struct.unpack(">h", r[pos:pos + 2])[0]
        msg, pos = _str(r, pos + 2)
        rtype = struct.unpack(">b", r[pos:pos + 1])[0]
        name, pos = _str(r, pos + 1)
        out.append((code, msg, rtype, name))
    return out


def describe_raw(bootstrap, rtype, name):
    """DescribeConfigs v0 of one resource on this node: (error code, {key: value})."""
    return kp.describe_configs_v0(bootstrap, rtype, name)


def metadata_auto_create(bootstrap, topic):
    """Metadata v4 for one topic, asking for auto-creation, on this node only."""
    call(bootstrap, 3, 4, struct.pack(">i", 1) + kp.kstr(topic) + struct.pack(">?", True))


# ---- clients ------------------------------------------------------------------------

def described(admin, node_id, keys):
    """DescribeConfigs of BROKER "<id>" (librdkafka sends it to that node): {key: (value, source)}."""
    res = ConfigResource(ConfigResource.Type.BROKER, str(node_id))
    entries = admin.describe_configs([res])[res].result(15)
    return {k: (entries[k].value, entries[k].source) for k in keys}


def broker_configs(c, node_id, keys):
    return described(c.node_admin(c.broker(node_id)), node_id, keys)


def shows(c, node_id, want):
    """wait_for predicate: node `node_id` describes every key as want[key] = (value, source)."""
    def pred():
        try:
            return broker_configs(c, node_id, list(want)) == want
        except Exception:
            return False
    return pred


_producers = []  # kept: python3-confluent-kafka 1.7 can leave an exception set when one is freed mid-test


def produce_big(bootstrap, topic, partition):
    """One BIG-byte record, acks=all, no retries: None or the broker's error code."""
    errs = []
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "retries": 0, "message.timeout.ms": 15000,
                  "message.max.bytes": 1_000_000})
    _producers.append(p)
    p.produce(topic, b"x" * BIG, partition=partition, on_delivery=lambda e, m: errs.append(e))
    p.flush(30)
    assert len(errs) == 1, "no delivery report"
    return errs[0].code() if errs[0] is not None else None


def kafka_python_admin(bootstrap):
    from kafka.admin import KafkaAdminClient
    return KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=20000)


# ---- tests --------------------------------------------------------------------------

def test_default_and_per_broker_take_effect_and_survive_restart_and_failover(broker_factory):
    c = Cluster(broker_factory, n=3, overrides={"auto.create.topics.enable": "false"}).start()
    fs = c.admin().create_topics([NewTopic("sizes", 3, replica_assignment=[[1, 2, 3], [2, 3, 1], [3, 1, 2]])],
                                 operation_timeout=10)
    fs["sizes"].result(30)
    c.wait_leaders("sizes", 3, isr=3)
    assert [produce_big(c.bootstrap, "sizes", p) for p in range(3)] == [None, None, None]

    # The cluster default, with kafka-python (AlterConfigs to whichever node it likes).
    from kafka.admin import ConfigResource as KResource, ConfigResourceType
    ka = kafka_python_admin(c.bootstrap)
    try:
        r = ka.alter_configs([KResource(ConfigResourceType.BROKER, "", configs={"message.max.bytes": "50000"})])
        assert [(e, t, n) for e, _, t, n in r.resources] == [(0, BROKER, "")], r.resources
    finally:
        ka.close()
    for nid in (1, 2, 3):
        wait_for(shows(c, nid, {"message.max.bytes": ("50000", DYNAMIC_DEFAULT)}),
                 what="node %d to show the cluster default" % nid)
    assert [produce_big(c.bootstrap, "sizes", p) for p in range(3)] == [KafkaError.MSG_SIZE_TOO_LARGE] * 3

    # One broker, with confluent-kafka (sent to broker 2, which forwards unless it is the controller).
    res = ConfigResource(ConfigResource.Type.BROKER, "2", set_config={"message.max.bytes": "200000"})
    c.admin().alter_configs([res])[res].result(30)
    wait_for(shows(c, 2, {"message.max.bytes": ("200000", DYNAMIC_BROKER)}), what="node 2's own value")
    for nid in (1, 3):
        assert broker_configs(c, nid, ["message.max.bytes"]) == {"message.max.bytes": ("50000", DYNAMIC_DEFAULT)}
    assert [produce_big(c.bootstrap, "sizes", p) for p in range(3)] == [
        KafkaError.MSG_SIZE_TOO_LARGE, None, KafkaError.MSG_SIZE_TOO_LARGE]
    # A topic's own max.message.bytes still wins over the broker's.
    res = ConfigResource(ConfigResource.Type.TOPIC, "sizes", set_config={"max.message.bytes": "150000"})
    c.admin().alter_configs([res])[res].result(30)
    wait_for(lambda: [produce_big(c.bootstrap, "sizes", p) for p in range(3)] == [None, None, None],
             what="the topic's own limit")
    res = ConfigResource(ConfigResource.Type.TOPIC, "sizes", set_config={})
    c.admin().alter_configs([res])[res].result(30)

    # Controller failover: the new controller's image has them; a change goes on from there.
    killed, term = c.controller_term()
    c.broker(killed).kill9()
    wait_for(lambda: (c.controller_term() or (0, 0))[1] > term, what="a new active controller")
    rest = [n for n in (1, 2, 3) if n != killed]
    got = incremental(c.broker(rest[0]).bootstrap, [(BROKER, "", [("log.retention.ms", SET, "3600000")])])
    assert got == [(0, None, BROKER, "")], got
    mmb = {1: ("50000", DYNAMIC_DEFAULT), 2: ("200000", DYNAMIC_BROKER), 3: ("50000", DYNAMIC_DEFAULT)}
    for nid in rest:
        wait_for(shows(c, nid, {"message.max.bytes": mmb[nid], "log.retention.ms": ("3600000", DYNAMIC_DEFAULT)}),
                 what="node %d after the failover" % nid)

    # The killed node comes back (replaying its metadata log), another restarts cleanly.
    c.broker(killed).start()
    again = rest[1]
    c.broker(again).restart()
    for nid in (killed, again):
        wait_for(shows(c, nid, {"message.max.bytes": mmb[nid], "log.retention.ms": ("3600000", DYNAMIC_DEFAULT),
                                "num.partitions": ("1", DEFAULT)}),
                 what="node %d after its restart" % nid)
    c.wait_leaders("sizes", 3, isr=3, timeout=60)  # every replica back in sync (a stale empty epoch once kept one out)
    leaders = {p: c.leader_of("sizes", p) for p in range(3)}
    assert {p: produce_big(c.bootstrap, "sizes", p) for p in range(3)} == {
        p: (None if leaders[p] == 2 else KafkaError.MSG_SIZE_TOO_LARGE) for p in range(3)}

    # Deleting the default's value: Kafka's default is back on the nodes without their own.
    got = incremental(c.broker(1).bootstrap, [(BROKER, "", [("message.max.bytes", DELETE, None)])])
    assert got == [(0, None, BROKER, "")], got
    for nid in (1, 3):
        wait_for(shows(c, nid, {"message.max.bytes": ("1048588", DEFAULT)}), what="node %d back to the default" % nid)
    assert broker_configs(c, 2, ["message.max.bytes"]) == {"message.max.bytes": ("200000", DYNAMIC_BROKER)}


def test_a_mixed_request_is_answered_per_resource(broker_factory):
    c = Cluster(broker_factory, n=3).start()
    c.create_topic("mix", partitions=1, rf=3)
    ctl = c.controller_term()[0]
    n = next(i for i in (1, 2, 3) if i != ctl)  # not the controller: the request is forwarded
    got = incremental(c.broker(n).bootstrap, [
        (TOPIC, "mix", [("retention.ms", SET, "12345")]),
        (BROKER, "", [("no.such.key", SET, "1")]),
        (BROKER, "3", [("log.dirs", SET, "/elsewhere")]),
        (BROKER, "2", [("auto.create.topics.enable", SET, "false")]),
        (BROKER, "1", [("num.partitions", SET, "4")]),
        (BROKER, "abc", [("num.partitions", SET, "4")]),
        (BROKER_LOGGER, str(n), [("root", SET, "debug")]),
        (BROKER_LOGGER, "x", [("root", SET, "loud")]),
        (99, "z", [("k", SET, "v")]),
    ])
    assert [(code, rtype, name) for code, _, rtype, name in got] == [
        (0, TOPIC, "mix"), (40, BROKER, ""), (40, BROKER, "3"), (0, BROKER, "2"), (0, BROKER, "1"),
        (42, BROKER, "abc"), (0, BROKER_LOGGER, str(n)), (40, BROKER_LOGGER, "x"), (42, 99, "z")], got
    msgs = [m for _, m, _, _ in got]
    assert msgs[1] == "Unknown broker config name: no.such.key"
    assert msgs[2] == "Cannot update these configs dynamically: log.dirs"
    assert "neither empty" in msgs[5] and "broker id" in msgs[5], msgs[5]
    assert msgs[7] == "Log level 'loud' is not one of error, warn, info, debug"
    assert msgs[8] == "Unsupported resource type 99"

    # The logger is the asked node's only.
    assert describe_raw(c.broker(n).bootstrap, BROKER_LOGGER, str(n)) == (0, {"root": "debug"})
    for other in (1, 2, 3):
        if other != n:
            assert describe_raw(c.broker(other).bootstrap, BROKER_LOGGER, str(other)) == (0, {"root": "info"})
    # The topic's config is everyone's; each broker config is its node's.
    for nid in (1, 2, 3):
        wait_for(lambda: describe_raw(c.broker(nid).bootstrap, TOPIC, "mix")[1].get("retention.ms") == "12345",
                 what="node %d to show the topic's retention" % nid)
    wait_for(shows(c, 2, {"auto.create.topics.enable": ("false", DYNAMIC_BROKER), "num.partitions": ("1", DEFAULT)}),
             what="node 2's auto-creation off")
    wait_for(shows(c, 1, {"auto.create.topics.enable": ("true", DEFAULT), "num.partitions": ("4", DYNAMIC_BROKER)}),
             what="node 1's num.partitions")
    assert broker_configs(c, 3, ["log.dirs"])["log.dirs"][1] == STATIC  # the refused change left it

    # Validate-only changes nothing, and says what a real change would.
    got = incremental(c.broker(n).bootstrap, [(BROKER, "", [("message.max.bytes", SET, "7")]),
                                              (BROKER, "", [("message.max.bytes", SET, "-7")])], validate_only=True)
    assert [g[0] for g in got] == [0, 40], got
    time.sleep(1)
    assert broker_configs(c, 3, ["message.max.bytes"]) == {"message.max.bytes": ("1048588", DEFAULT)}

    # Auto-creation as each node's configs say: node 2 creates nothing, node 1 four partitions.
    metadata_auto_create(c.broker(2).bootstrap, "auto-nope")
    metadata_auto_create(c.broker(1).bootstrap, "auto-yes")
    md = wait_for(lambda: (lambda t: t if t and len(t.partitions) == 4 else None)(
        c.metadata().topics.get("auto-yes")), what="auto-yes with node 1's 4 partitions")
    assert len(md.partitions) == 4
    assert "auto-nope" not in c.metadata().topics

    # AlterConfigs (kafka-python, one request): the topic's set replaced, the bad broker key refused.
    from kafka.admin import ConfigResource as KResource, ConfigResourceType
    ka = kafka_python_admin(c.bootstrap)
    try:
        r = ka.alter_configs([KResource(ConfigResourceType.TOPIC, "mix", configs={"retention.ms": "54321"}),
                              KResource(ConfigResourceType.BROKER, "", configs={"no.such.key": "1"})])
        assert [(e, t, name) for e, _, t, name in r.resources] == [(0, TOPIC, "mix"), (40, BROKER, "")], r.resources
    finally:
        ka.close()
    for nid in (1, 2, 3):
        wait_for(lambda: describe_raw(c.broker(nid).bootstrap, TOPIC, "mix")[1].get("retention.ms") == "54321",
                 what="node %d to show the replaced retention" % nid)
    got = incremental(c.broker(n).bootstrap, [(BROKER_LOGGER, str(n), [("root", SET, "info")])])
    assert got == [(0, None, BROKER_LOGGER, str(n))]


def cli(*args, timeout=60):
    p = subprocess.run([RUNNEL_BIN] + [str(a) for a in args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=timeout)
    assert p.returncode == 0, (args, p.returncode, p.stderr.decode())
    return p.stdout.decode()


def test_split_roles_cli_and_a_snapshot_carry_broker_configs(broker_factory):
    # 3 controllers, brokers 4-6 forwarding to them; the controllers keep 1 KB of the log for
    # brokers, so a restarted broker catches up from a snapshot of the image.
    c = Cluster(broker_factory, n=3, controllers=3, overrides={"metadata.feed.max.bytes": "1024"}).start()
    b = ["-b", c.broker(4).bootstrap]
    out = json.loads(cli("config", "set", "broker", "5", "message.max.bytes=60000", "--json", *b))
    assert out["changes"] == [{"name": "message.max.bytes", "old": "1048588", "new": "60000"}], out

    def cli_shows():
        rows = json.loads(cli("config", "get", "broker", "5", "message.max.bytes", "--json", *b))
        return rows == [dict(rows[0], value="60000", source="DYNAMIC_BROKER_CONFIG")] if rows else False
    wait_for(cli_shows, what="the CLI to show broker 5's value")
    for nid in (4, 6):
        assert broker_configs(c, nid, ["message.max.bytes"]) == {"message.max.bytes": ("1048588", DEFAULT)}
    fs = c.admin().create_topics([NewTopic("s", 3, replica_assignment=[[4, 5, 6], [5, 6, 4], [6, 4, 5]])],
                                 operation_timeout=10)
    fs["s"].result(30)
    c.wait_leaders("s", 3, isr=3)
    assert [produce_big(c.bootstrap, "s", p) for p in range(3)] == [None, KafkaError.MSG_SIZE_TOO_LARGE, None]

    # Broker 5 is away while the log moves past the controllers' feed; the cluster default changes.
    c.broker(5).stop()
    got = incremental(c.broker(6).bootstrap, [(BROKER, "", [("log.retention.ms", SET, "7200000")])])
    assert got == [(0, None, BROKER, "")], got
    c.create_topic("filler", partitions=24, rf=2)
    c.broker(5).start()
    wait_for(lambda: "node 5: metadata snapshot at offset" in c.broker(5).log_text().split("==== start 1")[1],
             what="node 5 to load a snapshot")
    wait_for(shows(c, 5, {"message.max.bytes": ("60000", DYNAMIC_BROKER),
                          "log.retention.ms": ("7200000", DYNAMIC_DEFAULT)}), what="node 5's configs from the snapshot")
    c.wait_brokers(3)  # node 5 unfenced again
    fs = c.admin().create_topics([NewTopic("only5", 1, replica_assignment=[[5]])], operation_timeout=10)
    fs["only5"].result(30)
    c.wait_leaders("only5", 1)
    assert produce_big(c.bootstrap, "only5", 0) == KafkaError.MSG_SIZE_TOO_LARGE


def test_a_data_dir_from_before_the_quorum_brings_its_broker_configs(broker_factory):
    # A lone broker kept its dynamic broker configs in runnel.meta (bconfig: its own, dconfig: the
    # cluster default); now a one-voter quorum, it writes them into the metadata log.
    b = broker_factory().start()
    b.stop()
    meta = os.path.join(b.data_dir, "runnel.meta")
    with open(meta, "a") as f:
        f.write("bconfig message.max.bytes 60000\ndconfig log.retention.ms 7200000\ndconfig num.partitions 3\n")
    want = {"message.max.bytes": ("60000", DYNAMIC_BROKER), "log.retention.ms": ("7200000", DYNAMIC_DEFAULT),
            "num.partitions": ("3", DYNAMIC_DEFAULT)}
    b.start()
    admin = AdminClient({"bootstrap.servers": b.bootstrap})
    wait_for(lambda: described(admin, 1, list(want)) == want, what="the imported configs")
    assert "3 dynamic broker config(s) imported from runnel.meta" in b.log_text()
    with open(meta) as f:
        assert "config" not in f.read()  # now the log's
    b.restart()
    admin = AdminClient({"bootstrap.servers": b.bootstrap})
    wait_for(lambda: described(admin, 1, list(want)) == want, what="the configs after a restart")
    metadata_auto_create(b.bootstrap, "auto")  # num.partitions from the imported default
    wait_for(lambda: len(getattr(admin.list_topics(timeout=10).topics.get("auto"), "partitions", {})) == 3,
             what="an auto-created topic with 3 partitions")
