"""Multi-broker helpers: start N runnel brokers as one cluster on loopback ports,
inject faults, and check the outcome (every acknowledged message exactly once
and in order per partition; replicas identical byte for byte up to the high
watermark)."""
import os
import random
import signal
import struct
import time

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic


class Cluster:
    """n broker processes. With controllers=0 (the default) every node is a voter running
    broker and controller (process.roles=broker,controller), ids 1..n. With controllers=k,
    KRaft's split: k controller-only nodes (ids 1..k, listening only on a CONTROLLER
    listener) and n broker-only nodes (ids k+1..k+n) that read the metadata log from them;
    `bootstrap_only` lists broker ids given controller.quorum.bootstrap.servers instead of
    the voters. self.brokers are the nodes that host partitions and serve clients.
    proxy (combined nodes only): route every node-to-node connection through a NetProxy
    (self.proxy), so a test can partition a node: voters and advertised listeners name the
    proxy's ports."""

    def __init__(self, broker_factory, n=3, overrides=None, controllers=0, bootstrap_only=(), proxy=False):
        self.factory = broker_factory
        # A small __consumer_offsets (Kafka's default is 50): consume_all's group creates it on
        # every cluster, and 150 more replicas only slow the fault tests down. A shorter
        # controlled-shutdown bound (default 5 s): a grant takes well under a second, and the
        # last node of a stopping cluster, left without a quorum, waits out the whole bound
        # (test_sigterm_moves_leadership_away_before_exit keeps the default).
        self.overrides = dict({"offsets.topic.num.partitions": "6", "controlled.shutdown.timeout.ms": "2000"},
                              **(overrides or {}))
        self.controllers = []
        self.ids = {}
        self.proxy = None
        if controllers == 0:
            self.brokers = [broker_factory(name="node%d" % (i + 1)) for i in range(n)]
            self.voter_nodes = list(self.brokers)
            ports = [b.port for b in self.brokers]
            if proxy:
                from netproxy import NetProxy
                self.proxy = NetProxy(lambda: {i + 1: b.proc.pid for i, b in enumerate(self.brokers) if b.proc})
                ports = [self.proxy.add(i + 1, b.port) for i, b in enumerate(self.brokers)]
            self.voters = voters = ",".join("%d@127.0.0.1:%d" % (i + 1, port) for i, port in enumerate(ports))
            for i, b in enumerate(self.brokers):
                b.overrides.update({"node.id": str(i + 1), "controller.quorum.voters": voters,
                                    "replica.lag.time.max.ms": "3000"})
                if proxy:
                    b.overrides["advertised.listeners"] = "PLAINTEXT://127.0.0.1:%d" % ports[i]
                b.overrides.update(self.overrides)
                self.ids[i + 1] = b
            return
        self.controllers = [broker_factory(name="controller%d" % (i + 1)) for i in range(controllers)]
        self.voter_nodes = self.controllers
        self.voters = ",".join("%d@127.0.0.1:%d" % (i + 1, b.port) for i, b in enumerate(self.controllers))
        for i, b in enumerate(self.controllers):
            b.overrides.update({"node.id": str(i + 1), "process.roles": "controller",
                                "listeners": "CONTROLLER://127.0.0.1:%d" % b.port,
                                "controller.listener.names": "CONTROLLER",
                                "controller.quorum.voters": self.voters})
            b.overrides.update(self.overrides)
            self.ids[i + 1] = b
        self.brokers = []
        for i in range(n):
            self.add_broker(controllers + i + 1, bootstrap=(controllers + i + 1) in bootstrap_only)

    def add_broker(self, node_id, bootstrap=False):
        """A broker-only node (not started): of a split cluster, or added to combined voters."""
        b = self.factory(name="node%d" % node_id)
        b.overrides.update({"node.id": str(node_id), "process.roles": "broker",
                            "controller.listener.names": "CONTROLLER", "replica.lag.time.max.ms": "3000"})
        if bootstrap:
            b.overrides["controller.quorum.bootstrap.servers"] = ",".join(c.bootstrap for c in self.voter_nodes)
        else:
            b.overrides["controller.quorum.voters"] = self.voters
        b.overrides.update(self.overrides)
        self.brokers.append(b)
        self.ids[node_id] = b
        return b

    def stop(self):
        """SIGTERM every node, brokers before controllers (a broker's controlled shutdown
        needs the controller), each checked for a clean exit. The brokers get theirs at once
        (then the controllers): one after another, each would wait out the controlled-shutdown
        timeout of a node left without a quorum."""
        stop_together(self.brokers)
        stop_together(self.controllers)

    @property
    def bootstrap(self):
        return ",".join(b.bootstrap for b in self.brokers)

    def start(self):
        for b in self.controllers + self.brokers:
            b.start()
        self.wait_brokers(len(self.brokers))
        return self

    def admin(self):
        if not hasattr(self, "_admin"):  # kept: futures die with their client
            self._admin = AdminClient({"bootstrap.servers": self.bootstrap})
        return self._admin

    def metadata(self, topic=None):
        return self.admin().list_topics(topic=topic, timeout=10)

    def wait_brokers(self, n, timeout=30):
        """Until every running broker lists n brokers in its own Metadata answer. Asked with a
        raw request: a client's first request to a node still registering (it lists no
        brokers yet) leaves librdkafka waiting out its whole timeout."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                if all(len(node_metadata(b, [])[0]) == n for b in self.brokers if b.proc is not None):
                    return
            except (OSError, struct.error):
                pass
            time.sleep(0.05)
        raise AssertionError("cluster did not show %d brokers; node1 log:\n%s" % (n, self.brokers[0].tail()))

    def create_topic(self, name, partitions=3, rf=3, config=None, timeout=30):
        deadline = time.time() + timeout
        while True:
            fs = self.admin().create_topics([NewTopic(name, partitions, rf, config=config or {})],
                                            operation_timeout=10)
            try:
                fs[name].result(15)
                break
            except Exception as e:
                if time.time() > deadline:
                    raise
                if "already exists" in str(e).lower() or "TOPIC_ALREADY_EXISTS" in str(e):
                    break
                time.sleep(0.3)
        self.wait_leaders(name, partitions)

    def node_admin(self, b):
        """A client bootstrapped on one node only (metadata as that node sees it)."""
        if not hasattr(b, "_admin"):
            b._admin = AdminClient({"bootstrap.servers": b.bootstrap})
        return b._admin

    def wait_leaders(self, topic, partitions, timeout=30, isr=None):
        """Cluster metadata once every partition has a leader (and an ISR of `isr`) as every
        running node sees it (followers of the metadata log learn a commit a moment later)."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            views = []
            for b in self.brokers:
                if b.proc is None:
                    continue
                try:
                    views.append(self.node_admin(b).list_topics(topic=topic, timeout=5))
                except Exception:
                    views.append(None)
            ok = bool(views)
            for full in views:
                md = full.topics.get(topic) if full else None
                ok = ok and bool(md) and not md.error and len(md.partitions) == partitions and all(
                    p.leader >= 0 and (isr is None or len(p.isrs) >= isr) for p in md.partitions.values())
            if ok:
                return views[0]
            time.sleep(0.2)
        raise AssertionError("partitions of %s have no leaders" % topic)

    def leader_of(self, topic, partition, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            t = self.metadata(topic).topics.get(topic)
            if t and partition in t.partitions and t.partitions[partition].leader >= 0:
                return t.partitions[partition].leader
            time.sleep(0.2)
        raise AssertionError("%s-%d has no leader" % (topic, partition))

    def broker(self, node_id):
        return self.ids[node_id]

    def controller_term(self):
        """(node id, term) of the newest 'is the active controller' line of a running node's log
        (None before any): the active controller, or the last one this side of an election."""
        best = None
        for nid, b in self.ids.items():
            if b.proc is None:
                continue
            for line in b.log_text().splitlines():
                if "is the active controller (term" in line:
                    term = int(line.rsplit("term ", 1)[1].rstrip(")"))
                    if best is None or term > best[1]:
                        best = (nid, term)
        return best

    def active_controller(self, timeout=30):
        """The node id of the active controller (from the controllers' logs: the last
        'is the active controller' line of a running node)."""
        return wait_for(self.controller_term, timeout, "an active controller")[0]

def wait_for(pred, timeout=30, what="condition"):
    """pred()'s first true value, polled until the deadline."""
    deadline = time.time() + timeout
    v = pred()
    while not v and time.time() < deadline:
        time.sleep(0.2)
        v = pred()
    assert v, "timed out waiting for " + what
    return v


def stop_together(nodes):
    """SIGTERM every running node at once, then wait for each (Broker.stop: a clean exit, no
    leak, no sanitizer report; the broker takes one SIGTERM, a second is ignored)."""
    running = [b for b in nodes if b.proc is not None]
    for b in running:
        b.proc.send_signal(signal.SIGTERM)
    errors = []
    for b in running:
        try:
            b.stop()
        except AssertionError as e:
            errors.append(str(e))
    assert not errors, "\n".join(errors)


def produce_acked(bootstrap, topic, partitions, n, tag=b"m"):
    """n messages round-robin over the partitions, idempotent with acks=all; returns
    {partition: [value, ...]} in acknowledgement order (every one acknowledged, asserted)."""
    acked = {p: [] for p in range(partitions)}
    errors = []

    def cb(err, msg):
        if err:
            errors.append(err)
        else:
            acked[msg.partition()].append(msg.value())

    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
                  "linger.ms": 5, "message.timeout.ms": 60000})
    for i in range(n):
        p.produce(topic, value=b"%s-%d" % (tag, i), partition=i % partitions, on_delivery=cb)
        p.poll(0)
    assert p.flush(90) == 0, "messages left unacknowledged"
    assert not errors, errors[:3]
    return acked


def consume_all(bootstrap, topic, partitions, timeout=60):
    """Every message of each partition from the start, as (offset, value) lists."""
    out = {}
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "checker", "enable.auto.commit": False,
                  "enable.partition.eof": True, "fetch.wait.max.ms": 100})
    try:
        for p in range(partitions):
            c.assign([TopicPartition(topic, p, 0)])
            got = []
            deadline = time.time() + timeout
            while time.time() < deadline:
                m = c.poll(1.0)
                if m is None:
                    continue
                if m.error():
                    if m.error().code() == -191:  # _PARTITION_EOF
                        break
                    continue
                got.append((m.offset(), m.value()))
            out[p] = got
    finally:
        c.close()
    return out


def check_exactly_once(acked, consumed):
    """acked: {partition: [value, ...] in ack order}; every acked value is
    consumed exactly once, and acked values keep their order in the partition."""
    for p, values in acked.items():
        seen = [v for _, v in consumed.get(p, [])]
        counts = {}
        for v in seen:
            counts[v] = counts.get(v, 0) + 1
        dups = [v for v, n in counts.items() if n > 1]
        assert not dups, "partition %d: duplicated %r at offsets %r" % (
            p, dups[:5], [o for o, v in consumed[p] if v in dups[:5]][:10])
        missing = [v for v in values if v not in counts]
        assert not missing, "partition %d: %d acked messages missing, e.g. %r" % (p, len(missing), missing[:5])
        pos = {v: i for i, v in enumerate(seen)}
        order = [pos[v] for v in values]
        assert order == sorted(order), "partition %d: acked messages out of order" % p


def _batches(data, upto):
    """Record batches of a segment byte string whose offsets lie below `upto`."""
    pos, out = 0, []
    while pos + 12 <= len(data):
        base, length = struct.unpack(">qi", data[pos:pos + 12])
        if length <= 0 or pos + 12 + length > len(data):
            break  # preallocated zeros or a torn tail
        last = base + struct.unpack(">i", data[pos + 23:pos + 27])[0]
        if last >= upto:
            break
        out.append(data[pos:pos + 12 + length])
        pos += 12 + length
    return out


def replica_bytes(broker, topic, partition, hw):
    d = os.path.join(broker.data_dir, "%s-%d" % (topic, partition))
    if not os.path.isdir(d):
        return None
    out = []
    for name in sorted(f for f in os.listdir(d) if f.endswith(".log")):
        with open(os.path.join(d, name), "rb") as f:
            out += _batches(f.read(), hw)
    return b"".join(out)


def high_watermarks(bootstrap, topic, partitions):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "hw"})
    try:
        return {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in range(partitions)}
    finally:
        c.close()


def seeded(seed):
    return random.Random(seed)


def node_metadata(broker, topics, timeout=5):
    """(broker ids, controller id, {topic: {partition: (leader, replicas, isr)}}) as `broker`
    itself answers Metadata v1 for `topics` (a direct connection to its own port: clients
    would ask whichever broker they like). A topic answered with an error maps to {}."""
    import kproto as kp
    conn = kp.Conn(broker.bootstrap, timeout=timeout)
    try:
        conn.request(3, 1, struct.pack(">i", len(topics)) + b"".join(kp.kstr(t) for t in topics))
        r = conn.recv_frame()
    finally:
        conn.close()
    pos = 4

    def i32():
        nonlocal pos
        pos += 4
        return struct.unpack(">i", r[pos - 4:pos])[0]

    def i16():
        nonlocal pos
        pos += 2
        return struct.unpack(">h", r[pos - 2:pos])[0]

    def string():
        nonlocal pos
        n = i16()
        pos += max(n, 0)
        return r[pos - max(n, 0):pos].decode()

    brokers = []
    for _ in range(i32()):
        brokers.append(i32())
        string(), i32(), string()
    controller = i32()
    out = {}
    for _ in range(i32()):
        err = i16()
        name = string()
        pos += 1  # is_internal
        parts = {}
        for _ in range(i32()):
            i16()
            p, leader = i32(), i32()
            replicas = [i32() for _ in range(i32())]
            isr = [i32() for _ in range(i32())]
            parts[p] = (leader, replicas, isr)
        out[name] = {} if err else parts
    return brokers, controller, out


def node_view(broker, topic, timeout=5):
    """{partition: (leader, replicas, isr)} as `broker` itself answers Metadata v1."""
    return node_metadata(broker, [topic], timeout)[2].get(topic, {})
