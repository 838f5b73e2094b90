#!/usr/bin/python3
"""bench_cluster.py — a 3-node Runnel cluster on this machine: replicated
throughput (RF=3) against RF=1, and failover time.

Starts three brokers (RUNNEL_BIN, default build/runnel) on free loopback ports
with temporary data dirs, as one cluster (controller.quorum.voters), with the
default settings. Then:

  1. throughput: `runnel bench produce` (librdkafka, acks=all, 100-byte
     messages, linger 5 ms) into a topic with replication factor 1, then one
     with replication factor 3 (min.insync.replicas=2), same partitions;
  2. failover: an idempotent acks=all producer sends at a steady rate to a
     one-partition RF=3 topic; the partition's leader is killed with -9; the
     failover time is from the kill to the first acknowledgement of a message
     sent after it (the partition accepts writes again), and from the kill to a
     new leader in Metadata (the cluster's part of it; the rest is the client
     noticing), repeated --rounds times (the killed node is restarted and
     caught up between rounds).

With --split, KRaft's split roles instead: three controller-only nodes (ids
1-3, CONTROLLER listeners) and three broker-only nodes (ids 4-6) that read the
metadata log from them; the failover rounds then also kill -9 the active
controller and time the first CreateTopics that succeeds afterwards.

All three brokers and the client share the machine's cores, so RF=3 does three
times the disk and CPU work of RF=1 on the same cores: the ratio says what
replication costs here, not on three machines.

  bench/bench_cluster.py [--messages 300000] [--size 100] [--partitions 3] [--rounds 3] [--split] [--json]
"""
import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Node:
    def __init__(self, binary, node_id, port, voters, base, roles=None):
        self.binary, self.id, self.port, self.voters, self.roles = binary, node_id, port, voters, roles
        self.data = os.path.join(base, "n%d" % node_id)
        self.log = os.path.join(base, "n%d.log" % node_id)
        self.proc = None

    def start(self):
        args = [self.binary, "broker", "--override", "node.id=%d" % self.id,
                "--override", "listeners=PLAINTEXT://127.0.0.1:%d" % self.port,
                "--override", "log.dirs=%s" % self.data, "--override", "metrics.listeners=",
                "--override", "controller.quorum.voters=%s" % self.voters]
        if self.roles == "controller":
            args += ["--override", "process.roles=controller", "--override", "controller.listener.names=CONTROLLER",
                     "--override", "listeners=CONTROLLER://127.0.0.1:%d" % self.port]
        elif self.roles == "broker":
            args += ["--override", "process.roles=broker", "--override", "controller.listener.names=CONTROLLER"]
        self.proc = subprocess.Popen(args, stdout=open(self.log, "ab"), stderr=subprocess.STDOUT)
        for _ in range(300):
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("node %d did not start" % self.id)

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.proc = None

    def stop(self):
        if self.proc:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(60)
            self.proc = None


def wait_for(pred, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if pred():
                return
        except Exception:
            pass
        time.sleep(0.1)
    raise RuntimeError("timed out waiting for " + what)


def partitions(admin, topic):
    t = admin.list_topics(topic=topic, timeout=10).topics.get(topic)
    return t.partitions if t and not t.error else {}


def create(admin, topic, n, rf, config=None):
    for _ in range(50):
        try:
            admin.create_topics([NewTopic(topic, n, rf, config=config or {})], operation_timeout=10)[topic].result(15)
            break
        except Exception as e:
            if "already exists" in str(e).lower():
                break
            time.sleep(0.3)
    wait_for(lambda: len(partitions(admin, topic)) == n and all(
        p.leader >= 0 and len(p.isrs) == rf for p in partitions(admin, topic).values()), 60, topic)


def bench_produce(binary, bootstrap, topic, messages, size):
    out = subprocess.run([binary, "bench", "produce", "-b", bootstrap, "-t", topic, "--no-create", "-n",
                          str(messages), "-s", str(size), "--acks", "all", "--progress", "0", "--json"],
                         capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        raise RuntimeError("bench produce failed: " + out.stderr[-2000:])
    return json.loads(out.stdout)


def failover_round(admin, nodes, bootstrap, topic):
    acks = []
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True, "linger.ms": 0,
                  "message.timeout.ms": 60000, "topic.metadata.refresh.interval.ms": 1000})

    def cb(err, msg):
        if not err:
            acks.append(time.time())

    t_end = time.time() + 2
    while time.time() < t_end:  # steady state first
        p.produce(topic, b"x", on_delivery=cb)
        p.poll(0.002)
    leader = partitions(admin, topic)[0].leader
    victim = nodes[leader]
    t_kill = time.time()
    victim.kill9()
    deadline = time.time() + 60
    after = []  # acks of messages sent after the kill (not those already in flight)
    elected = None
    next_md = 0
    while time.time() < deadline and not (after and elected):
        if not after:
            p.produce(topic, b"y", on_delivery=lambda e, m: (not e) and after.append(time.time()))
        p.poll(0.005)
        if elected is None and time.time() >= next_md:  # the cluster's view: a new leader in Metadata
            next_md = time.time() + 0.05
            try:
                l = partitions(admin, topic)[0].leader
                if l >= 0 and l != leader:
                    elected = time.time()
            except Exception:
                pass
    first = min(after) if after else None
    p.flush(60)
    victim.start()
    wait_for(lambda: all(len(x.isrs) == 3 for x in partitions(admin, topic).values()), 120, "ISR back to 3")
    return (first - t_kill) if first else None, (elected - t_kill) if elected else None, leader


def active_controller(controllers):
    """The running controller whose log last said it became the active controller."""
    best = None
    for n in controllers.values():
        if n.proc is None:
            continue
        with open(n.log, "rb") as f:
            for line in f.read().decode("utf-8", "replace").splitlines():
                if "is the active controller (term" in line:
                    term = int(line.rsplit("term ", 1)[1].rstrip(")"))
                    if best is None or term > best[0]:
                        best = (term, n.id)
    return best[1] if best else None


def controller_failover_round(admin, controllers, base, i):
    """kill -9 of the active controller, then CreateTopics through a broker until one succeeds."""
    victim = controllers[active_controller(controllers)]
    t_kill = time.time()
    victim.kill9()
    topic = "cf%d" % i
    created = None
    while created is None and time.time() < t_kill + 60:
        try:
            admin.create_topics([NewTopic(topic, 1, 3)], operation_timeout=5)[topic].result(10)
            created = time.time()
        except Exception as e:
            if "already exists" in str(e).lower():
                created = time.time()
            else:
                time.sleep(0.02)
    victim.start()
    time.sleep(2)  # back in the quorum before the next round
    return {"killed_node": victim.id, "create_s": round(created - t_kill, 3) if created else None}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=300000)
    ap.add_argument("--partitions", type=int, default=3)
    ap.add_argument("--size", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--split", action="store_true", help="3 controller-only + 3 broker-only nodes")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    binary = os.environ.get("RUNNEL_BIN", os.path.join(ROOT, "build", "runnel"))
    base = tempfile.mkdtemp(prefix="bench_cluster_")
    ports = [free_port() for _ in range(6 if a.split else 3)]
    voters = ",".join("%d@127.0.0.1:%d" % (i + 1, p) for i, p in enumerate(ports[:3]))
    if a.split:
        controllers = {i + 1: Node(binary, i + 1, ports[i], voters, base, "controller") for i in range(3)}
        nodes = {i + 4: Node(binary, i + 4, ports[i + 3], voters, base, "broker") for i in range(3)}
    else:
        controllers, nodes = {}, {i + 1: Node(binary, i + 1, ports[i], voters, base) for i in range(3)}
    bootstrap = ",".join("127.0.0.1:%d" % n.port for n in nodes.values())
    result = {}
    try:
        for n in list(controllers.values()) + list(nodes.values()):
            n.start()
        admin = AdminClient({"bootstrap.servers": bootstrap})
        wait_for(lambda: len(admin.list_topics(timeout=5).brokers) == 3, 60, "3 brokers")
        create(admin, "rf1", a.partitions, 1)
        create(admin, "rf3", a.partitions, 3, {"min.insync.replicas": "2"})
        r1 = bench_produce(binary, bootstrap, "rf1", a.messages, a.size)
        r3 = bench_produce(binary, bootstrap, "rf3", a.messages, a.size)
        result["rf1_msgs_per_s"] = r1.get("msgs_per_s")
        result["rf3_msgs_per_s"] = r3.get("msgs_per_s")
        result["rf1"] = r1
        result["rf3"] = r3
        create(admin, "fo", 1, 3, {"min.insync.replicas": "2"})
        times = []
        for _ in range(a.rounds):
            t, e, leader = failover_round(admin, nodes, bootstrap, "fo")
            times.append({"killed_node": leader, "failover_s": round(t, 3) if t else None,
                          "new_leader_s": round(e, 3) if e else None})
        result["failover"] = times
        if a.split:
            result["controller_failover"] = [controller_failover_round(admin, controllers, base, i)
                                             for i in range(a.rounds)]
    finally:
        for n in list(nodes.values()) + list(controllers.values()):
            try:
                n.stop()
            except Exception:
                pass
        shutil.rmtree(base, ignore_errors=True)
    if a.json:
        print(json.dumps(result))
    else:
        print("RF=1 acks=all, %d-byte messages: %s msgs/s, %s MB/s" % (a.size, result.get("rf1_msgs_per_s"),
                                                                    result["rf1"].get("mb_per_s")))
        print("RF=3 acks=all, %d-byte messages: %s msgs/s, %s MB/s (min.insync.replicas=2)" % (
            a.size, result.get("rf3_msgs_per_s"), result["rf3"].get("mb_per_s")))
        for r in result.get("failover", []):
            print("kill -9 of leader node %s: new leader in Metadata after %s s, first ack after %s s" % (
                r["killed_node"], r["new_leader_s"], r["failover_s"]))
        for r in result.get("controller_failover", []):
            print("kill -9 of the active controller (node %s): a topic created after %s s" % (
                r["killed_node"], r["create_s"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
