"""A seeded fault schedule against a cluster of real broker processes while idempotent acks=all
producers write continuously: kill -9 and restart, SIGSTOP/SIGCONT, a network partition of one
broker (every node-to-node connection runs through netproxy.NetProxy) and a full disk (each
node's log dir is a small tmpfs). One fault at a time, in bounded rounds; after each the cluster
must heal (every replica back in the ISR). Afterwards every acknowledged message is consumed
exactly once and in order per partition, and every replica's log is byte-identical up to the
high watermark.

Replay a failure with the seed and rounds its message prints:
    RN_FAULT_SEED=<seed> RN_FAULT_ROUNDS=<rounds> pytest tests/integration/test_cluster_faults.py
(RN_FAULT_LOG_LEVEL=debug for the brokers' debug log).
"""
import os
import re
import subprocess
import threading
import time

import pytest
from confluent_kafka import Producer

from cluster import Cluster, check_exactly_once, consume_all, high_watermarks, node_view, replica_bytes, seeded

SEED = int(os.environ.get("RN_FAULT_SEED", "8"))
ROUNDS = int(os.environ.get("RN_FAULT_ROUNDS", "4"))
TOPIC, PARTITIONS = "faults", 4
KINDS = ["kill", "pause", "partition", "disk"]
TMPFS = "32m"


class Writer:
    """An idempotent acks=all producer in a thread of its own, writing until stopped."""

    def __init__(self, bootstrap, rate=600):
        import collections
        import logging
        self.eos_log = collections.deque(maxlen=200)  # librdkafka's idempotence log, for failures
        log = logging.getLogger("rdkafka-eos-%d" % id(self))
        log.propagate = False
        log.setLevel(logging.DEBUG)
        ring = logging.Handler()
        ring.emit = lambda r: self.eos_log.append("%.3f %s" % (r.created, r.getMessage()))
        log.addHandler(ring)
        self.p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
                           "linger.ms": 5, "message.timeout.ms": 180000, "request.timeout.ms": 10000,
                           "debug": "eos"}, logger=log)
        self.acked, self.errors, self.sent = {}, [], 0
        self.offsets = {}  # value -> offset acknowledged
        self.rate = rate
        self.stopping = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _cb(self, err, msg):
        if err:
            self.errors.append(str(err))
        else:
            self.acked.setdefault(msg.partition(), []).append(msg.value())
            self.offsets[msg.value()] = msg.offset()

    def _run(self):
        t0 = time.time()
        while not self.stopping:
            try:
                self.p.produce(TOPIC, value=b"m%08d" % self.sent, on_delivery=self._cb)
                self.sent += 1
            except BufferError:
                pass
            self.p.poll(0)
            ahead = self.sent / self.rate - (time.time() - t0)
            if ahead > 0:
                time.sleep(min(ahead, 0.05))

    def stop(self, timeout=180):
        self.stopping = True
        self.thread.join()
        return self.p.flush(timeout)

    def acked_count(self):
        return sum(len(v) for v in self.acked.values())


def mount_tmpfs(path):
    os.makedirs(path, exist_ok=True)
    return subprocess.run(["mount", "-t", "tmpfs", "-o", "size=" + TMPFS, "tmpfs", path],
                          capture_output=True).returncode == 0


def fill(mnt):
    """Fills the tmpfs at mnt but for a few hundred KB (below log.dir.min.free.bytes)."""
    st = os.statvfs(mnt)
    free = st.f_bavail * st.f_frsize
    path = os.path.join(mnt, "filler")
    with open(path, "wb") as f:
        left = max(free - (256 << 10), 0)
        while left > 0:
            n = min(left, 1 << 20)
            try:
                f.write(b"\0" * n)
            except OSError:
                break
            left -= n
    return path


def schedule(rnd, rounds, nodes):
    """Each round: (kind, how the target is picked, how long the fault lasts in s). Every kind
    once per len(KINDS) rounds, in a seeded order."""
    out = []
    while len(out) < rounds:
        kinds = list(KINDS)
        rnd.shuffle(kinds)
        for k in kinds:
            out.append((k, rnd.randrange(PARTITIONS), rnd.choice(["leader", "follower"]),
                        round(rnd.uniform(3.0, 6.0), 1)))
    return out[:rounds]


def isr_complete(c):
    """True when every running node itself reports a leader for every partition and all its
    replicas in the ISR."""
    for b in c.brokers:
        if b.proc is None:
            continue
        try:
            view = node_view(b, TOPIC)
        except OSError:
            return False
        if len(view) != PARTITIONS or not all(
                leader >= 1 and sorted(isr) == sorted(replicas) for leader, replicas, isr in view.values()):
            return False
    return True


def pick_target(c, rnd, partition, role):
    md = c.metadata(TOPIC).topics[TOPIC].partitions[partition]
    if role == "leader":
        return md.leader
    return rnd.choice([r for r in md.replicas if r != md.leader])


def views(c):
    """{node: {partition: (leader, replicas, isr)}} as each running node reports it."""
    out = {}
    for i, b in enumerate(c.brokers):
        try:
            out[i + 1] = node_view(b, TOPIC) if b.proc else None
        except OSError as e:
            out[i + 1] = repr(e)
    return out


def wait_out_of_isr(c, node, timeout):
    """Seconds until the controller has taken `node` out of every ISR, as each other node reports."""
    others = [b for i, b in enumerate(c.brokers) if i + 1 != node]
    t0 = time.time()
    while time.time() - t0 < timeout:
        try:
            if all(node not in isr for b in others for _, _, isr in node_view(b, TOPIC).values()):
                return time.time() - t0
        except OSError:
            pass
        time.sleep(0.2)
    return None


def keep(c, tmp_path):
    """Copies each node's data dir (a tmpfs unmounted at the end) next to its log, for a post-mortem."""
    import shutil
    for i, b in enumerate(c.brokers if c else []):
        if b.proc is not None:
            b.resume()
        try:
            shutil.copytree(b.data_dir, str(tmp_path / ("kept-node%d" % (i + 1))))
        except OSError:
            pass


def run_schedule(broker_factory, tmp_path, nodes, seed, rounds):
    rnd = seeded(seed * 100 + nodes)
    plan = schedule(rnd, rounds, nodes)
    events = []
    where = lambda: "replay: RN_FAULT_SEED=%d RN_FAULT_ROUNDS=%d (%d nodes); events %s" % (
        seed, rounds, nodes, events)
    mounts = {}
    c = w = None
    try:
        c = Cluster(broker_factory, n=nodes, proxy=True, overrides={
            "min.insync.replicas": "2", "log.dir.min.free.bytes": str(1 << 20),
            "log.segment.bytes": str(1 << 20), "log.level": os.environ.get("RN_FAULT_LOG_LEVEL", "info")})
        for i, b in enumerate(c.brokers):
            mnt = str(tmp_path / ("disk%d" % (i + 1)))
            if not mount_tmpfs(mnt):
                break
            mounts[i + 1] = mnt
            b.data_dir = os.path.join(mnt, "data")
        if len(mounts) != nodes:  # not root: no full-disk faults
            plan = [(("kill" if k == "disk" else k),) + rest for k, *rest in plan]
            events.append(("no tmpfs: disk faults become kills",))
        c.start()
        c.create_topic(TOPIC, partitions=PARTITIONS, rf=3, config={"min.insync.replicas": "2"})
        c.wait_leaders(TOPIC, PARTITIONS, isr=3)
        w = Writer(c.bootstrap)
        time.sleep(1.5)
        for rnum, (kind, partition, role, seconds) in enumerate(plan):
            node = pick_target(c, rnd, partition, role)
            b = c.broker(node)
            before = w.acked_count()
            t0 = time.time()
            events.append((rnum, kind, "node%d" % node, "%s of p%d" % (role, partition), seconds))
            filler = None
            if kind == "kill":
                b.kill9()
            elif kind == "pause":
                b.pause()
            elif kind == "partition":
                c.proxy.partition(node)
            else:
                filler = fill(mounts[node])
            if kind in ("kill", "pause", "partition"):  # fenced by the controller, out of every ISR
                took = wait_out_of_isr(c, node, 30)
                assert took is not None, "round %d: node %d still in an ISR 30 s into the %s; %s" % (
                    rnum, node, kind, where())
            time.sleep(max(seconds - (time.time() - t0), 0))
            if kind == "kill":
                b.start()
            elif kind == "pause":
                b.resume()
            elif kind == "partition":
                c.proxy.heal(node)
            else:
                os.unlink(filler)
            deadline = time.time() + 90
            while time.time() < deadline and not isr_complete(c):
                time.sleep(0.5)
            assert isr_complete(c), "round %d: the ISR did not heal within 90 s (views %s); %s" % (
                rnum, views(c), where())
            for x in c.brokers:
                assert x.proc.poll() is None, "node died: %s\n%s" % (where(), x.tail())
            events[-1] += ("acked +%d" % (w.acked_count() - before), "healed in %.1fs" % (time.time() - t0 - seconds))
        time.sleep(1.5)  # writes go on after the last fault
        left = w.stop()
        assert left == 0, "%d messages never delivered; %s" % (left, where())
        assert not w.errors, "delivery errors %s; %s" % (w.errors[:5], where())
        assert w.acked_count() == w.sent, (w.acked_count(), w.sent, where())
        md = c.wait_leaders(TOPIC, PARTITIONS, isr=3, timeout=60)
        check_exactly_once(w.acked, consume_all(c.bootstrap, TOPIC, PARTITIONS))
        hws = high_watermarks(c.bootstrap, TOPIC, PARTITIONS)
        assert sum(hws.values()) == w.sent, (hws, w.sent, where())
        for p, pm in md.topics[TOPIC].partitions.items():
            deadline = time.time() + 30
            while True:
                copies = [replica_bytes(c.broker(r), TOPIC, p, hws[p]) for r in pm.replicas]
                if len(set(copies)) == 1 or time.time() > deadline:
                    break
                time.sleep(0.5)
            assert len(set(copies)) == 1, "partition %d: replicas %s differ below the high watermark %d " \
                "(lengths %s); %s" % (p, pm.replicas, hws[p], [len(x or b"") for x in copies], where())
            assert copies[0], "partition %d is empty; %s" % (p, where())
        print("fault schedule passed: %s" % where())
        c.stop()  # a clean SIGTERM exit (no leak, no sanitizer report) while the tmpfs exist
    except Exception as e:
        keep(c, tmp_path)
        msg = str(e) if isinstance(e, AssertionError) else repr(e)
        if w is not None:
            with open(str(tmp_path / "producer-eos.log"), "w") as f:
                f.write("\n".join(w.eos_log))
            dups = [v for v in re.findall(r"b'(m\d+)'", msg)][:5]
            msg += "\nacknowledged at offsets: %s" % {v: w.offsets.get(v.encode()) for v in dups}
        raise AssertionError("%s\n%s\nlogs and data dirs kept in %s" % (msg, where(), tmp_path)) from None
    finally:
        if c is not None and c.proxy:
            c.proxy.close()
        if c is not None:
            for b in c.brokers:
                if b.proc is not None:
                    try:
                        b.resume()
                        b.stop()
                    except Exception:
                        pass
        for mnt in mounts.values():
            subprocess.run(["umount", "-l", mnt], capture_output=True)


@pytest.mark.parametrize("nodes", [3, 5])
def test_seeded_faults_exactly_once_identical_replicas(broker_factory, tmp_path, nodes):
    run_schedule(broker_factory, tmp_path, nodes, SEED, ROUNDS)


def test_netproxy_cuts_a_node_off_and_heals(tmp_path):
    """The proxy itself: connections from a node process (here this test process, named node 1)
    to node 2 pass; partition(2) drops them and black-holes new ones; heal() lets them through;
    a partition of an uninvolved node changes nothing."""
    import socket
    from netproxy import NetProxy
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)

    def echo():
        while True:
            try:
                s, _ = srv.accept()
            except OSError:
                return
            threading.Thread(target=lambda s=s: [s.sendall(d) for d in iter(lambda: s.recv(4096), b"")],
                             daemon=True).start()

    threading.Thread(target=echo, daemon=True).start()
    proxy = NetProxy(lambda: {1: os.getpid()})
    port = proxy.add(2, srv.getsockname()[1])

    def roundtrip(s):
        try:
            s.sendall(b"ping")
            return s.recv(16) == b"ping"
        except OSError:
            return False

    try:
        a = socket.create_connection(("127.0.0.1", port), timeout=2)
        assert roundtrip(a)
        assert proxy.seen == {(1, 2): 1}
        proxy.partition(3)
        assert roundtrip(a)
        proxy.partition(2)
        a.settimeout(2)
        assert not roundtrip(a)  # dropped
        b = socket.create_connection(("127.0.0.1", port), timeout=2)
        b.settimeout(1)
        assert not roundtrip(b)  # accepted, then silence
        proxy.heal()
        c = socket.create_connection(("127.0.0.1", port), timeout=2)
        assert roundtrip(c)
        b.settimeout(2)
        try:  # the held connection is closed on heal (reset: it held unread data)
            assert b.recv(16) == b""
        except ConnectionResetError:
            pass
        assert proxy.refused == 2
    finally:
        proxy.close()
        srv.close()


def test_partitioned_controller_leaves_the_other_leaders_alone(broker_factory):
    """The active controller is cut off: the majority elects a new one, which fences only the
    isolated node. Partitions led elsewhere keep their leader throughout (the other nodes'
    heartbeats reach the new controller within their session: a heartbeat waiting on the
    unreachable old controller is cut short when the metadata leader changes), the isolated
    node's partitions move, and after the heal it rejoins every ISR."""
    c = Cluster(broker_factory, proxy=True, overrides={"min.insync.replicas": "2"}).start()
    c.create_topic("pc", partitions=3, rf=3, config={"min.insync.replicas": "2"})
    c.wait_leaders("pc", 3, isr=3)
    ctl = c.metadata().controller_id
    others = [b for i, b in enumerate(c.brokers) if i + 1 != ctl]
    before = node_view(others[0], "pc")
    c.proxy.partition(ctl)
    deadline, moved = time.time() + 20, False
    while time.time() < deadline and not moved:
        for b in others:
            view = node_view(b, "pc")
            for p, (leader, _, isr) in view.items():
                if before[p][0] != ctl:
                    assert leader == before[p][0], "p%d lost its leader %d: %s" % (p, before[p][0], view)
            moved = all(leader not in (ctl, -1) and ctl not in isr for leader, _, isr in view.values())
        time.sleep(0.1)
    assert moved, node_view(others[0], "pc")
    c.proxy.heal(ctl)
    deadline = time.time() + 60
    while time.time() < deadline and not all(len(isr) == 3 for _, _, isr in node_view(others[0], "pc").values()):
        time.sleep(0.3)
    assert all(len(isr) == 3 for _, _, isr in node_view(others[0], "pc").values()), node_view(others[0], "pc")
    c.stop()
    c.proxy.close()


def test_isolated_leader_acknowledges_nothing_and_truncates_its_tail(broker_factory):
    """A partition's leader is cut off from the other nodes while a producer that knows only
    that node keeps writing to it with acks=all: the leader may append (it cannot know yet that it
    was replaced) but acknowledges nothing; the majority elects a new leader and takes writes.
    After the heal the old leader truncates its unreplicated tail by leader epoch: the replicas
    are byte-identical, and exactly the acknowledged messages are there."""
    c = Cluster(broker_factory, proxy=True, overrides={"min.insync.replicas": "2"}).start()
    c.create_topic("iso", partitions=1, rf=3, config={"min.insync.replicas": "2"})
    c.wait_leaders("iso", 1, isr=3)
    old = c.leader_of("iso", 0)
    acked, errors = [], []

    def cb(err, msg):
        (errors if err else acked).append(str(err) if err else msg.value())

    conf = {"acks": "all", "enable.idempotence": True, "linger.ms": 5}
    p = Producer(dict(conf, **{"bootstrap.servers": c.bootstrap}))
    for i in range(100):
        p.produce("iso", b"before-%d" % i, on_delivery=cb)
    assert p.flush(60) == 0 and len(acked) == 100 and not errors
    c.proxy.partition(old)
    stray = Producer(dict(conf, **{"bootstrap.servers": c.broker(old).bootstrap, "message.timeout.ms": 8000}))
    stray_acked, stray_errors = [], []
    for i in range(50):
        stray.produce("iso", b"stray-%d" % i, on_delivery=lambda e, m: (stray_errors if e else stray_acked).append(m))
    stray.flush(30)
    assert not stray_acked, "the isolated leader acknowledged %d acks=all writes" % len(stray_acked)
    assert len(stray_errors) == 50
    assert wait_out_of_isr(c, old, 30) is not None, "node %d still in the ISR" % old
    others = ",".join(b.bootstrap for i, b in enumerate(c.brokers) if i + 1 != old)
    p = Producer(dict(conf, **{"bootstrap.servers": others}))
    for i in range(100):
        p.produce("iso", b"after-%d" % i, on_delivery=cb)
    assert p.flush(60) == 0 and len(acked) == 200 and not errors, errors[:3]
    c.proxy.heal(old)
    deadline = time.time() + 60
    while time.time() < deadline and not all(
            len(node_view(b, "iso").get(0, (0, [], []))[2]) == 3 for b in c.brokers):
        time.sleep(0.3)
    assert old in node_view(c.broker(old), "iso")[0][2], "node %d did not rejoin the ISR" % old
    consumed = [v for _, v in consume_all(c.bootstrap, "iso", 1)[0]]
    assert consumed == acked, (len(consumed), [v for v in consumed if v.startswith(b"stray")][:3])
    hw = high_watermarks(c.bootstrap, "iso", 1)[0]
    assert hw == 200
    copies = [replica_bytes(b, "iso", 0, hw) for b in c.brokers]
    deadline = time.time() + 30
    while len(set(copies)) != 1 and time.time() < deadline:
        time.sleep(0.5)
        copies = [replica_bytes(b, "iso", 0, hw) for b in c.brokers]
    assert len(set(copies)) == 1, [len(x or b"") for x in copies]
    assert "truncated" in c.broker(old).log_text(), "node %d never truncated its stray tail" % old
    c.stop()
    c.proxy.close()
