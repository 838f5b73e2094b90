#!/usr/bin/python3
"""bench_txn.py — transactional vs plain idempotent produce throughput (librdkafka).

Starts its own broker (RUNNEL_BIN, default build/runnel) on a free port with a
temporary data dir, unless --bootstrap is given. Both runs send the same
messages with the same batch settings (linger.ms, batch.num.messages); the
transactional run commits every --txn-messages messages. Prints one line per
run and the ratio.

  bench/bench_txn.py [--messages 200000] [--size 100] [--txn-messages 10000] [--partitions 3]
                     [--latency 100]

--latency N also times N one-message transactions (begin, produce, commit) and
prints their median and 90th percentile: the fixed cost of a transaction.

Each transaction has a fixed cost on top of its messages: librdkafka waits for
its AddPartitionsToTxn (its Ongoing record fsynced in __transaction_state; the
client delays it to batch partitions) before producing, and commit_transaction
flushes, then waits for EndTxn: PrepareCommit is fsynced before any marker,
then the markers and CompleteCommit are, before the answer. Small transactions are bounded by that, large ones by the
produce path. Run-to-run variation on a shared 2-vCPU VM is large: repeat.
"""
import argparse
import os
import shutil
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


def start_broker(binary):
    data = tempfile.mkdtemp(prefix="bench_txn_")
    port = free_port()
    proc = subprocess.Popen([binary, "broker", "--override", "listeners=PLAINTEXT://127.0.0.1:%d" % port,
                             "--override", "log.dirs=%s" % data, "--override", "metrics.listeners=",
                             "--override", "log.level=warn"])
    for _ in range(300):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc, data, "127.0.0.1:%d" % port
        except OSError:
            time.sleep(0.05)
    proc.kill()
    sys.exit("broker did not start")


def run(bs, topic, n, size, partitions, conf, txn_messages=0):
    p = Producer(dict({"bootstrap.servers": bs, "linger.ms": 5, "batch.num.messages": 10000,
                       "enable.idempotence": True, "acks": "all"}, **conf))
    value = b"x" * size
    failed = []

    def cb(err, _msg):
        if err:
            failed.append(err)

    if txn_messages:
        p.init_transactions(30)
    t0 = time.time()
    sent = 0
    while sent < n:
        chunk = min(txn_messages or n, n - sent)
        if txn_messages:
            p.begin_transaction()
        for i in range(chunk):
            while True:
                try:
                    p.produce(topic, value=value, partition=(sent + i) % partitions, on_delivery=cb)
                    break
                except BufferError:
                    p.poll(0.01)
        sent += chunk
        if txn_messages:
            p.commit_transaction(60)
    p.flush(120)
    dt = time.time() - t0
    if failed:
        sys.exit("delivery failed: %s" % failed[:3])
    return n / dt, n * size / dt / 1e6


def txn_latency(bs, topic, n):
    """Median and p90 (ms) of n one-message transactions, one after the other."""
    p = Producer({"bootstrap.servers": bs, "transactional.id": "bench-txn-latency", "linger.ms": 0})
    p.init_transactions(30)
    lat = []
    for _ in range(n):
        t0 = time.time()
        p.begin_transaction()
        p.produce(topic, value=b"x", partition=0)
        p.commit_transaction(30)
        lat.append((time.time() - t0) * 1000)
    lat.sort()
    return lat[len(lat) // 2], lat[min(len(lat) - 1, len(lat) * 9 // 10)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap")
    ap.add_argument("--messages", type=int, default=200000)
    ap.add_argument("--size", type=int, default=100)
    ap.add_argument("--txn-messages", type=int, default=10000)
    ap.add_argument("--partitions", type=int, default=3)
    ap.add_argument("--latency", type=int, default=0)
    a = ap.parse_args()
    proc = data = None
    bs = a.bootstrap
    if not bs:
        proc, data, bs = start_broker(os.environ.get("RUNNEL_BIN", os.path.join(ROOT, "build", "runnel")))
    try:
        adm = AdminClient({"bootstrap.servers": bs})
        for t in ("bench-idem", "bench-txn"):
            adm.create_topics([NewTopic(t, a.partitions, 1)])[t].result(30)
        idem = run(bs, "bench-idem", a.messages, a.size, a.partitions, {})
        txn = run(bs, "bench-txn", a.messages, a.size, a.partitions, {"transactional.id": "bench-txn"},
                  a.txn_messages)
        print("idempotent     %10.0f msgs/s  %7.1f MB/s" % idem)
        print("transactional  %10.0f msgs/s  %7.1f MB/s  (%d messages per transaction)" % (txn + (a.txn_messages,)))
        print("ratio          %10.2f" % (txn[0] / idem[0]))
        if a.latency > 0:
            print("1-message txn  p50 %.1f ms  p90 %.1f ms  (%d transactions)" % (txn_latency(bs, "bench-txn", a.latency)
                                                                               + (a.latency,)))
    finally:
        if proc:
            proc.terminate()
            proc.wait()
            shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
