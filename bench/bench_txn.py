#!/usr/bin/python3
"""bench_txn.py — transactional vs plain idempotent produce throughput (librdkafka).

Starts its own broker (RUNNEL_BIN, default build/runnel) on a free port with a
temporary data dir, unless --bootstrap is given. Both runs send the same
messages with the same batch settings (linger.ms, batch.num.messages); the
transactional run commits every --txn-messages messages. Prints one line per
run and the ratio.

  bench/bench_txn.py [--messages 200000] [--size 100] [--txn-messages 10000] [--partitions 3]

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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap")
    ap.add_argument("--messages", type=int, default=200000)
    ap.add_argument("--size", type=int, default=100)
    ap.add_argument("--txn-messages", type=int, default=10000)
    ap.add_argument("--partitions", type=int, default=3)
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
    finally:
        if proc:
            proc.terminate()
            proc.wait()
            shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
