#!/usr/bin/env python3
"""bench_group.py — how fast a big consumer group settles, and what a group costs.

Starts its own broker (a fresh data dir, a free port on 127.0.0.1), runs two
measurements with raw Kafka requests (Python standard library only, so the
figures are the coordinator's, not a client library's), stops the broker and
prints the figures.

1. Settle time of a 100-member group after the last join. N-1 members form a
   Stable group and heartbeat every --heartbeat-ms; then member N joins. The
   clock starts when member N sends its JoinGroup and stops when the last of
   the N members has its SyncGroup answer with its assignment. Reported with
   its parts: until every member is told to rejoin (heartbeat interval bound),
   until the join phase completes (the coordinator answers N JoinGroups), and
   until the assignment has reached everyone (leader's SyncGroup stored,
   N answers). Repeated --rounds times.
2. Memory per group: broker RSS (VmRSS) before and after creating --groups
   groups, each a Stable one-member group with one committed offset (JoinGroup,
   SyncGroup, OffsetCommit with 16 bytes of metadata), and again for groups
   holding only a committed offset (standalone commits).

Usage: bench/bench_group.py [--runnel PATH] [--members 100] [--groups 10000]
(PATH defaults to $RUNNEL_BIN, then build/release/runnel). Use a build without
sanitizers for the memory figure. group.initial.rebalance.delay.ms is 0 so the
first generation forms at once (Kafka's 3 s default only delays empty groups).
"""
import argparse
import os
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# ---- raw protocol (non-flexible versions) ----------------------------------

def kstr(s):
    b = s.encode()
    return struct.pack(">h", len(b)) + b


def kbytes(b):
    return struct.pack(">i", len(b)) + b


class R:
    def __init__(self, d):
        self.d, self.p = d, 0

    def t(self, fmt):
        v = struct.unpack_from(fmt, self.d, self.p)
        self.p += struct.calcsize(fmt)
        return v[0] if len(v) == 1 else v

    def s(self):
        n = self.t(">h")
        v = self.d[self.p:self.p + max(n, 0)].decode()
        self.p += max(n, 0)
        return v if n >= 0 else None

    def b(self):
        n = self.t(">i")
        v = self.d[self.p:self.p + max(n, 0)]
        self.p += max(n, 0)
        return v


class Conn:
    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=120)
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.corr = 0

    def send(self, key, ver, body):
        self.corr += 1
        req = struct.pack(">hhi", key, ver, self.corr) + kstr("bench") + body
        self.s.sendall(struct.pack(">i", len(req)) + req)

    def recv(self):
        n = struct.unpack(">i", self._read(4))[0]
        d = self._read(n)
        return R(d[4:])

    def call(self, key, ver, body):
        self.send(key, ver, body)
        return self.recv()

    def _read(self, n):
        out = bytearray()
        while len(out) < n:
            c = self.s.recv(n - len(out))
            if not c:
                raise ConnectionError("broker closed the connection")
            out += c
        return bytes(out)


def subscription(topic):
    # ConsumerProtocolSubscription v0: int16 version, [topics], user data (null)
    return struct.pack(">hi", 0, 1) + kstr(topic) + struct.pack(">i", -1)


def assignment(topic, parts):
    return struct.pack(">hi", 0, 1) + kstr(topic) + struct.pack(">i", len(parts)) + \
        b"".join(struct.pack(">i", p) for p in parts) + struct.pack(">i", -1)


def join(c, group, member, session_ms=30000, rebalance_ms=30000, topic="bench"):
    # JoinGroup v1: group, session, rebalance, member, protocol type, protocols
    body = kstr(group) + struct.pack(">ii", session_ms, rebalance_ms) + kstr(member) + kstr("consumer")
    body += struct.pack(">i", 1) + kstr("range") + kbytes(subscription(topic))
    r = c.call(11, 1, body)
    err, gen = r.t(">h"), r.t(">i")
    r.s()
    leader, me = r.s(), r.s()
    members = [(r.s(), r.b()) for _ in range(r.t(">i"))]
    return err, gen, leader, me, members


def sync(c, group, gen, member, assignments):
    body = kstr(group) + struct.pack(">i", gen) + kstr(member) + struct.pack(">i", len(assignments))
    for m, a in assignments.items():
        body += kstr(m) + kbytes(a)
    r = c.call(14, 0, body)
    return r.t(">h"), r.b()


def heartbeat(c, group, gen, member):
    return c.call(12, 0, kstr(group) + struct.pack(">i", gen) + kstr(member)).t(">h")


def commit(c, group, gen, member, topic, partition, offset, metadata):
    # OffsetCommit v2: group, generation, member, retention, [topic [partition offset metadata]]
    body = kstr(group) + struct.pack(">i", gen) + kstr(member) + struct.pack(">q", -1)
    body += struct.pack(">i", 1) + kstr(topic) + struct.pack(">i", 1) + struct.pack(">iq", partition, offset)
    body += kstr(metadata)
    r = c.call(8, 2, body)
    r.t(">i")
    r.s()
    r.t(">i")
    return r.t(">ih")[1]


def create_topic(port, name, partitions):
    # CreateTopics v0: [name, partitions, replication, [assignments], [configs]], timeout
    c = Conn(port)
    body = struct.pack(">i", 1) + kstr(name) + struct.pack(">ihii", partitions, 1, 0, 0) + struct.pack(">i", 30000)
    c.call(19, 0, body)
    c.s.close()


# ---- the broker --------------------------------------------------------------

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


# ---- 1. settle time ---------------------------------------------------------

class Member(threading.Thread):
    """Heartbeats; on REBALANCE_IN_PROGRESS rejoins and syncs (the leader assigns)."""

    def __init__(self, port, group, hb_ms, partitions, stamps):
        super().__init__(daemon=True)
        self.c = Conn(port)
        self.group, self.hb, self.partitions, self.stamps = group, hb_ms / 1000.0, partitions, stamps
        self.member, self.gen = "", -1
        self.stop = threading.Event()
        self.synced_gen = -1

    def join_and_sync(self):
        """Join and sync; a rebalance that starts in between means join again (as clients do)."""
        while True:
            t_join = time.perf_counter()
            err, gen, leader, me, members = join(self.c, self.group, self.member)
            t_joined = time.perf_counter()
            if err == 25:  # UNKNOWN_MEMBER_ID: start over as a new member
                self.member = ""
                continue
            if err:
                raise RuntimeError("JoinGroup error %d" % err)
            self.member, self.gen = me, gen
            assigns = {}
            if leader == me:
                ids = sorted(m for m, _ in members)
                for i, m in enumerate(ids):
                    assigns[m] = assignment("bench", [p for p in range(self.partitions) if p % len(ids) == i])
            err, a = sync(self.c, self.group, gen, me, assigns)
            if err in (22, 27):  # ILLEGAL_GENERATION, REBALANCE_IN_PROGRESS: rejoin
                continue
            if err:
                raise RuntimeError("SyncGroup error %d" % err)
            self.synced_gen = gen
            self.stamps.append((gen, t_join, t_joined, time.perf_counter()))
            return

    def run(self):
        try:
            self.join_and_sync()
            while not self.stop.is_set():
                time.sleep(self.hb)
                err = heartbeat(self.c, self.group, self.gen, self.member)
                if err in (22, 27):  # ILLEGAL_GENERATION, REBALANCE_IN_PROGRESS
                    self.join_and_sync()
                elif err:
                    raise RuntimeError("Heartbeat error %d" % err)
        except (OSError, RuntimeError) as e:
            if not self.stop.is_set():
                print("member failed:", e, file=sys.stderr)


def settle(port, n, hb_ms, rounds):
    results = []
    for rnd in range(rounds):
        group = "settle-%d" % rnd
        stamps = []
        first = [Member(port, group, hb_ms, n * 2, stamps) for _ in range(n - 1)]
        for m in first:
            m.start()
        deadline = time.time() + 120
        while time.time() < deadline and not (len(set(m.member for m in first)) == n - 1
                                               and all(m.synced_gen == first[0].synced_gen >= 1 for m in first)
                                               and all(m.gen == first[0].gen for m in first)):
            time.sleep(0.05)
        time.sleep(hb_ms * 3 / 1000.0)  # settled and heartbeating
        gen0 = max(m.synced_gen for m in first)
        stamps.clear()
        last = Member(port, group, hb_ms, n * 2, stamps)
        t0 = time.perf_counter()
        last.start()
        everyone = first + [last]
        while time.time() < deadline and not all(m.synced_gen > gen0 for m in everyone):
            time.sleep(0.005)
        done = [s for s in stamps if s[0] > gen0]
        if len(done) < n:
            raise RuntimeError("round %d: only %d of %d members settled" % (rnd, len(done), n))
        t_end = max(s[3] for s in done)
        t_all_rejoin_sent = max(s[1] for s in done)
        t_all_joined = max(s[2] for s in done)
        results.append({
            "settle_ms": (t_end - t0) * 1000,
            "until_last_rejoin_ms": (t_all_rejoin_sent - t0) * 1000,
            "join_phase_ms": (t_all_joined - t_all_rejoin_sent) * 1000,
            "sync_phase_ms": (t_end - t_all_joined) * 1000,
        })
        for m in everyone:
            m.stop.set()
        for m in everyone:
            m.join(5)
            m.c.s.close()
    return results


# ---- 2. memory per group ----------------------------------------------------

def make_groups(port, count, with_member, threads=8):
    errors = []

    def work(lo, hi):
        c = Conn(port)
        try:
            for i in range(lo, hi):
                g = "mem-%s-%d" % ("m" if with_member else "o", i)
                if with_member:
                    err, gen, leader, me, members = join(c, g, "", session_ms=1800000, rebalance_ms=30000)
                    if err:
                        errors.append(err)
                        continue
                    sync(c, g, gen, me, {me: assignment("bench", [i % 8])})
                    err = commit(c, g, gen, me, "bench", i % 8, i, "metadata-16bytes")
                else:
                    err = commit(c, g, -1, "", "bench", i % 8, i, "metadata-16bytes")
                if err:
                    errors.append(err)
        finally:
            c.s.close()

    step = (count + threads - 1) // threads
    ts = [threading.Thread(target=work, args=(i * step, min(count, (i + 1) * step))) for i in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    if errors:
        raise RuntimeError("%d errors, first %d" % (len(errors), errors[0]))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runnel", default=os.environ.get("RUNNEL_BIN", os.path.join(ROOT, "build", "release", "runnel")))
    ap.add_argument("--members", type=int, default=100)
    ap.add_argument("--heartbeat-ms", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--groups", type=int, default=10000)
    args = ap.parse_args()

    port = free_port()
    data = tempfile.mkdtemp(prefix="bench-group-")
    log = open(os.path.join(data, "broker.log"), "wb")
    proc = subprocess.Popen([args.runnel, "broker", "--override", "listeners=PLAINTEXT://127.0.0.1:%d" % port,
                             "--override", "log.dirs=%s/data" % data, "--override", "metrics.listeners=",
                             "--override", "group.initial.rebalance.delay.ms=0", "--override", "log.level=" + os.environ.get("BENCH_LOG_LEVEL", "warn")],
                            stdout=log, stderr=log)
    try:
        deadline = time.time() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.time() > deadline or proc.poll() is not None:
                    raise RuntimeError("broker did not start")
                time.sleep(0.05)
        create_topic(port, "bench", 8)
        c = Conn(port)
        c.call(10, 0, kstr("warm-up"))  # FindCoordinator: creates __consumer_offsets
        c.s.close()

        print("== settle time of a %d-member group after the last join (heartbeat every %d ms, %d rounds)"
              % (args.members, args.heartbeat_ms, args.rounds))
        res = settle(port, args.members, args.heartbeat_ms, args.rounds)
        for k in ("settle_ms", "until_last_rejoin_ms", "join_phase_ms", "sync_phase_ms"):
            vals = [r[k] for r in res]
            print("  %-22s median %8.1f ms   min %8.1f   max %8.1f" % (k, statistics.median(vals), min(vals), max(vals)))

        print("== memory per group (%d groups each, VmRSS of the broker)" % args.groups)
        for with_member in (True, False):
            time.sleep(0.5)
            before = rss_kb(proc.pid)
            t0 = time.perf_counter()
            make_groups(port, args.groups, with_member)
            dt = time.perf_counter() - t0
            time.sleep(0.5)
            after = rss_kb(proc.pid)
            what = "1 member + 1 offset" if with_member else "1 offset, no members"
            print("  %-22s %7.0f bytes/group  (RSS %d -> %d KiB; %.0f groups/s created)"
                  % (what, (after - before) * 1024.0 / args.groups, before, after, args.groups / dt))
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            rc = proc.wait()
        log.close()
        with open(os.path.join(data, "broker.log"), "rb") as f:
            text = f.read()
        if rc != 0 or text.strip():
            sys.stderr.write("broker log (warnings and errors):\n" + text[-3000:].decode("utf-8", "replace"))
        shutil.rmtree(data, ignore_errors=True)
    print("broker exit code %d" % rc)
    return 0 if rc == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
