"""Helpers for consumer-group tests: consumers in child processes (so one can be
SIGKILLed), waiting on conditions, and raw requests no client library sends
(OffsetDelete).

Run as a script, this file is the child consumer:
    python3 group_helpers.py BOOTSTRAP GROUP TOPIC [key=value librdkafka config]...
It subscribes, prints one JSON line per event to stdout ({"ev": "assign",
"parts": [...]}, {"ev": "revoke", ...}, {"ev": "msg", "p": .., "o": .., "v": ..})
and commits each message synchronously before printing it.
"""
import json
import os
import queue
import socket
import struct
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def wait_for(cond, timeout=30, interval=0.05, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(interval)
    raise AssertionError("timed out after %ss waiting for %s" % (timeout, what))


class ChildConsumer:
    """A confluent-kafka consumer in its own process; events arrive on a queue."""

    def __init__(self, bootstrap, group, topic, **conf):
        args = [sys.executable, os.path.join(HERE, "group_helpers.py"), bootstrap, group, topic]
        args += ["%s=%s" % (k, v) for k, v in conf.items()]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.events = queue.Queue()
        self.assignment = set()
        self.assigns = 0
        self.revokes = 0
        self.messages = []
        self.lock = threading.Lock()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stdout:
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            with self.lock:
                if ev["ev"] == "assign":
                    self.assignment |= set(ev["parts"])
                    self.assigns += 1
                elif ev["ev"] == "revoke":
                    self.assignment -= set(ev["parts"])
                    self.revokes += 1
                elif ev["ev"] == "msg":
                    self.messages.append((ev["p"], ev["o"], ev["v"]))
            self.events.put(ev)

    def parts(self):
        with self.lock:
            return set(self.assignment)

    def kill(self):
        self.proc.kill()
        self.proc.wait(10)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


# ---- raw requests ----------------------------------------------------------

def _kstr(s):
    b = s.encode()
    return struct.pack(">h", len(b)) + b


def _call(bootstrap, api_key, version, body, timeout=10):
    host, port = bootstrap.split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as s:
        req = struct.pack(">hhi", api_key, version, 1) + _kstr("group-test") + body
        s.sendall(struct.pack(">i", len(req)) + req)
        n = struct.unpack(">i", _recv(s, 4))[0]
        data = _recv(s, n)
    assert struct.unpack(">i", data[:4])[0] == 1
    return data[4:]


def _recv(s, n):
    out = b""
    while len(out) < n:
        chunk = s.recv(n - len(out))
        if not chunk:
            raise ConnectionError("closed")
        out += chunk
    return out


def offset_delete(bootstrap, group, topics):
    """OffsetDelete v0. topics: {name: [partitions]}. Returns (group error, {(topic, p): error})."""
    body = _kstr(group) + struct.pack(">i", len(topics))
    for t, ps in topics.items():
        body += _kstr(t) + struct.pack(">i", len(ps)) + b"".join(struct.pack(">i", p) for p in ps)
    r = _call(bootstrap, 47, 0, body)
    err, _throttle, nt = struct.unpack(">hii", r[:10])
    pos, out = 10, {}
    for _ in range(nt):
        ln = struct.unpack(">h", r[pos:pos + 2])[0]
        name = r[pos + 2:pos + 2 + ln].decode()
        pos += 2 + ln
        np_ = struct.unpack(">i", r[pos:pos + 4])[0]
        pos += 4
        for _ in range(np_):
            p, e = struct.unpack(">ih", r[pos:pos + 6])
            pos += 6
            out[(name, p)] = e
    return err, out


class _Reader:
    def __init__(self, data):
        self.d, self.p = data, 0

    def take(self, fmt):
        v = struct.unpack_from(fmt, self.d, self.p)
        self.p += struct.calcsize(fmt)
        return v[0] if len(v) == 1 else v

    def str(self):
        n = self.take(">h")
        if n < 0:
            return None
        v = self.d[self.p:self.p + n].decode()
        self.p += n
        return v

    def bytes(self):
        n = self.take(">i")
        v = self.d[self.p:self.p + max(n, 0)]
        self.p += max(n, 0)
        return v


def _kbytes(b):
    return struct.pack(">i", len(b)) + b


def join_v0(bootstrap, group, member_id="", session_ms=10000, metadata=b"\x00\x00"):
    """JoinGroup v0 (no MEMBER_ID_REQUIRED step). Returns (error, generation, member_id, leader)."""
    body = _kstr(group) + struct.pack(">i", session_ms) + _kstr(member_id) + _kstr("consumer")
    body += struct.pack(">i", 1) + _kstr("range") + _kbytes(metadata)
    r = _Reader(_call(bootstrap, 11, 0, body))
    err, gen = r.take(">h"), r.take(">i")
    _protocol, leader, member = r.str(), r.str(), r.str()
    return err, gen, member, leader


def sync_v0(bootstrap, group, generation, member_id, assignments):
    body = _kstr(group) + struct.pack(">i", generation) + _kstr(member_id) + struct.pack(">i", len(assignments))
    for m, a in assignments.items():
        body += _kstr(m) + _kbytes(a)
    r = _Reader(_call(bootstrap, 14, 0, body))
    return r.take(">h"), r.bytes()


def heartbeat_v0(bootstrap, group, generation, member_id):
    body = _kstr(group) + struct.pack(">i", generation) + _kstr(member_id)
    return _Reader(_call(bootstrap, 12, 0, body)).take(">h")


# ---- the child consumer ----------------------------------------------------

def _child(argv):
    from confluent_kafka import Consumer, KafkaException

    bootstrap, group, topic = argv[:3]
    conf = {"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
            "enable.auto.commit": False, "session.timeout.ms": 6000, "heartbeat.interval.ms": 500}
    for kv in argv[3:]:
        k, v = kv.split("=", 1)
        conf[k] = v
    c = Consumer(conf)

    def emit(ev):
        sys.stdout.write(json.dumps(ev) + "\n")
        sys.stdout.flush()

    def on_assign(consumer, parts):
        emit({"ev": "assign", "parts": sorted(p.partition for p in parts)})

    def on_revoke(consumer, parts):
        emit({"ev": "revoke", "parts": sorted(p.partition for p in parts)})

    c.subscribe([topic], on_assign=on_assign, on_revoke=on_revoke)
    import signal
    stopping = []
    signal.signal(signal.SIGTERM, lambda *a: stopping.append(1))
    while not stopping:
        m = c.poll(0.1)
        if m is None or m.error():
            continue
        try:
            c.commit(message=m, asynchronous=False)
        except KafkaException:
            pass
        emit({"ev": "msg", "p": m.partition(), "o": m.offset(), "v": m.value().decode()})
    c.close()


if __name__ == "__main__":
    _child(sys.argv[1:])
