"""The runnel command line (`runnel topic|produce|consume|group|cluster|config`)
against a real broker: every subcommand, its --json output (parsed with
json.loads), a produce -> consume round trip that must be byte-identical, a
group's lag and reset, and the failures a user meets first (wrong flag,
unreachable broker, missing topic) with their messages and exit statuses
(0 ok, 1 failed, 2 usage).

The CLI binary is RUNNEL_BIN (the sanitizer build): every run is checked for
sanitizer and leak reports.
"""
import json
import os
import pty
import random
import socket
import struct
import subprocess
import time

import pytest

from conftest import RUNNEL_BIN, free_port
from helpers import admin, consume_partition, create_topic
from kproto import Conn, api_versions, kstr

RUN_TIMEOUT = 120


def run(*args, input=None, timeout=RUN_TIMEOUT, check=None):
    """Run `runnel args...`; returns CompletedProcess with bytes stdout/stderr."""
    p = subprocess.run([RUNNEL_BIN] + [str(a) for a in args], input=input, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=timeout)
    err = p.stderr.decode("utf-8", "replace")
    assert "Sanitizer" not in err and "runtime error" not in err, err
    if check is not None:
        assert p.returncode == check, "runnel %s -> %d (wanted %d)\nstdout: %s\nstderr: %s" % (
            " ".join(map(str, args)), p.returncode, check, p.stdout[-2000:], err)
    return p


def ok(*args, **kw):
    return run(*args, check=0, **kw)


def ok_json(*args, **kw):
    p = ok(*(list(args) + ["--json"]), **kw)
    return json.loads(p.stdout)


def text(p):
    return p.stdout.decode("utf-8", "replace")


def err_text(p):
    return p.stderr.decode("utf-8", "replace")


def broker_apis(bootstrap):
    """The API keys the broker serves (ApiVersions v0)."""
    c = Conn(bootstrap)
    try:
        resp = api_versions(c)
    finally:
        c.close()
    n = struct.unpack(">i", resp[6:10])[0]
    return {struct.unpack(">h", resp[10 + 6 * i:12 + 6 * i])[0] for i in range(n)}


def need_groups(broker):
    if 11 not in broker_apis(broker.bootstrap):  # JoinGroup
        pytest.skip("the broker does not serve consumer groups yet (no JoinGroup in ApiVersions)")


def fetch_producer_ids(bootstrap, topic, partition=0):
    """Fetch v4 from offset 0 and return each record batch's producerId."""
    body = struct.pack(">iiiib", -1, 1000, 1, 10 * 1024 * 1024, 0)
    body += struct.pack(">i", 1) + kstr(topic) + struct.pack(">i", 1) + struct.pack(">iqi", partition, 0, 10 * 1024 * 1024)
    c = Conn(bootstrap)
    try:
        c.request(1, 4, body)
        resp = c.recv_frame()
    finally:
        c.close()
    off = 4 + 4  # correlation id, throttle
    assert struct.unpack(">i", resp[off:off + 4])[0] == 1
    off += 4
    ln = struct.unpack(">h", resp[off:off + 2])[0]
    off += 2 + ln
    assert struct.unpack(">i", resp[off:off + 4])[0] == 1
    off += 4
    _, err, _, _ = struct.unpack(">ihqq", resp[off:off + 22])
    assert err == 0
    off += 22
    naborted = struct.unpack(">i", resp[off:off + 4])[0]
    off += 4 + max(naborted, 0) * 16
    size = struct.unpack(">i", resp[off:off + 4])[0]
    off += 4
    records = resp[off:off + size]
    pids, pos = [], 0
    while pos + 12 <= len(records):
        blen = struct.unpack(">i", records[pos + 8:pos + 12])[0]
        if pos + 12 + blen > len(records):
            break
        pids.append(struct.unpack(">q", records[pos + 43:pos + 51])[0])
        pos += 12 + blen
    return pids


# ---- help and usage ----

def test_help_on_every_level():
    top = ok("--help")
    for cmd in ("topic", "produce", "consume", "group", "cluster", "config"):
        assert cmd in text(top)
    verbs = {
        "topic": ["create", "list", "describe", "alter", "delete", "add-partitions"],
        "group": ["list", "describe", "delete", "reset-offsets"],
        "cluster": ["info"],
        "config": ["get", "set"],
    }
    for cmd, vs in verbs.items():
        p = ok(cmd, "--help")
        for v in vs:
            assert v in text(p)
            h = ok(cmd, v, "--help")
            assert text(h).startswith("usage: runnel %s %s" % (cmd, v))
            assert "--bootstrap" in text(h)
        p = run(cmd, check=2)  # a subcommand is needed
        assert "usage: runnel %s" % cmd in err_text(p)
    for cmd in ("produce", "consume"):
        h = ok(cmd, "-h")
        assert text(h).startswith("usage: runnel %s TOPIC" % cmd)


@pytest.mark.parametrize("args,needle", [
    (["topic", "list", "--bogus"], "unknown option '--bogus'"),
    (["topic", "frobnicate"], "unknown subcommand 'frobnicate'"),
    (["topic", "create"], "which topic"),
    (["topic", "create", "t", "-p"], "option '-p' needs a value"),
    (["topic", "create", "t", "-p", "many"], "needs a whole number"),
    (["topic", "create", "t", "-c", "novalue"], "needs KEY=VALUE"),
    (["topic", "add-partitions", "t"], "exactly one of -n COUNT and --total N"),
    (["topic", "list", "--json=yes"], "takes no value"),
    (["topic", "list", "-X", "no.such.property=1"], "invalid client property"),
    (["produce"], "which topic"),
    (["produce", "t", "--acks", "2"], "--acks takes all, 1 or 0"),
    (["produce", "t", "--compression", "brotli"], "unknown compression 'brotli'"),
    (["consume", "t", "--from", "yesterday"], "--from takes beginning, end, OFFSET"),
    (["consume", "t", "--group", "g", "--partition", "0"], "--partition cannot be used with --group"),
    (["consume", "t", "--group", "g", "--from", "5"], "with --group, --from takes beginning or end"),
    (["consume", "t", "--isolation", "dirty"], "--isolation takes"),
    (["group", "reset-offsets", "g", "--topic", "t"], "--to"),
    (["group", "reset-offsets", "g", "--to", "earliest"], "--topic TOPIC"),
    (["config", "get", "table", "x"], "unknown resource type 'table'"),
    (["config", "set", "topic", "t", "novalue"], "expected KEY=VALUE"),
    (["nosuchcommand"], "unknown command 'nosuchcommand'"),
])
def test_wrong_usage_exits_2_with_a_short_usage(args, needle):
    # No broker is contacted: usage is checked first (the bootstrap points nowhere).
    k = 2 if args[0] in ("topic", "group", "config", "cluster") else 1
    p = run(*(args[:k] + ["-b", "127.0.0.1:1"] + args[k:] if args[0] != "nosuchcommand" else args), check=2)
    e = err_text(p)
    assert needle in e, e
    assert "usage: runnel" in e
    assert p.stdout == b""


# ---- unreachable broker ----

@pytest.mark.parametrize("args", [
    ["topic", "list"],
    ["topic", "describe", "orders"],
    ["topic", "create", "orders"],
    ["topic", "delete", "orders"],
    ["produce", "orders"],
    ["consume", "orders"],
    ["group", "list"],
    ["group", "describe", "g"],
    ["cluster", "info"],
    ["config", "get", "topic", "orders"],
])
def test_unreachable_broker_fails_fast_with_a_clear_message(args):
    port = free_port()  # nothing listens there
    t0 = time.time()
    p = run(*(args + ["-b", "127.0.0.1:%d" % port]), input=b"", check=1)
    took = time.time() - t0
    assert "cannot reach 127.0.0.1:%d: connection refused" % port in err_text(p), err_text(p)
    assert took < 8, "took %.1fs to give up" % took


def test_unresolvable_host():
    p = run("topic", "list", "-b", "no-such-host.invalid:9092", check=1)
    assert "cannot reach no-such-host.invalid:9092: cannot resolve the host name" in err_text(p)


def test_bootstrap_from_environment(broker):
    create_topic(broker.bootstrap, "envtopic")
    env = dict(os.environ, RUNNEL_BOOTSTRAP=broker.bootstrap)
    p = subprocess.run([RUNNEL_BIN, "topic", "list", "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       env=env, timeout=RUN_TIMEOUT)
    assert p.returncode == 0, p.stderr
    assert [t["name"] for t in json.loads(p.stdout)] == ["envtopic"]


# ---- topics ----

def test_topic_create_list_describe_alter_delete(broker):
    b = ["-b", broker.bootstrap]
    p = ok("topic", "create", "orders", "-p", "3", "-r", "1", "-c", "retention.ms=3600000", "-c",
           "cleanup.policy=delete", *b)
    assert text(p) == "created topic orders\n"
    ok("topic", "create", "payments", "audit", *b)

    # Again: a clear failure; --if-not-exists makes it a success.
    p = run("topic", "create", "orders", *b, check=1)
    assert err_text(p).strip() == "runnel topic create: topic orders already exists"
    p = ok("topic", "create", "orders", "--if-not-exists", *b)
    assert "topic orders already exists" in text(p)

    # The broker agrees.
    md = admin(broker.bootstrap).list_topics(timeout=10)
    assert len(md.topics["orders"].partitions) == 3

    # list: table and JSON.
    p = ok("topic", "list", *b)
    lines = text(p).splitlines()
    assert lines[0].split() == ["TOPIC", "PARTITIONS", "REPLICAS"]
    rows = [l.split() for l in lines[1:]]
    assert rows == [["audit", "1", "1"], ["orders", "3", "1"], ["payments", "1", "1"]]
    js = ok_json("topic", "list", *b)
    assert js == [{"name": "audit", "partitions": 1, "replication_factor": 1},
                  {"name": "orders", "partitions": 3, "replication_factor": 1},
                  {"name": "payments", "partitions": 1, "replication_factor": 1}]

    # describe: partitions, leaders, replicas, ISR, offsets, configs with their source.
    p = ok("topic", "describe", "orders", *b)
    out = text(p)
    assert "topic orders: 3 partitions, replication factor 1" in out
    assert "PARTITION  LEADER  REPLICAS  ISR  LOG-START  HIGH-WATERMARK" in out
    cfg = {l.split()[0]: l.split()[1:] for l in out.splitlines() if l.startswith(("retention.ms", "segment.ms"))}
    assert cfg["retention.ms"] == ["3600000", "topic"]
    assert cfg["segment.ms"][1] == "default"
    d = ok_json("topic", "describe", "orders", *b)
    assert len(d) == 1 and d[0]["name"] == "orders" and d[0]["replication_factor"] == 1
    assert [x["partition"] for x in d[0]["partitions"]] == [0, 1, 2]
    for x in d[0]["partitions"]:
        assert x["leader"] == 1 and x["replicas"] == [1] and x["isr"] == [1]
        assert x["log_start_offset"] == 0 and x["high_watermark"] == 0 and x["error"] is None
    cfgs = {c["name"]: c for c in d[0]["configs"]}
    assert cfgs["retention.ms"]["value"] == "3600000"
    assert cfgs["retention.ms"]["source"] == "DYNAMIC_TOPIC_CONFIG"
    assert cfgs["segment.ms"]["source"] == "DEFAULT_CONFIG" and cfgs["segment.ms"]["default"] is True

    # alter: changes one config and keeps the others.
    p = ok("topic", "alter", "orders", "-c", "segment.ms=600000", *b)
    assert "topic orders: segment.ms 604800000 -> 600000" in text(p)
    p = ok("topic", "alter", "orders", "-c", "retention.ms=7200000", *b)
    cfgs = {c["name"]: c for c in ok_json("topic", "describe", "orders", *b)[0]["configs"]}
    assert cfgs["retention.ms"]["value"] == "7200000"
    assert cfgs["segment.ms"]["value"] == "600000", "a second alter must keep the first one's change"
    assert cfgs["cleanup.policy"]["source"] == "DYNAMIC_TOPIC_CONFIG"
    js = ok_json("topic", "alter", "orders", "-d", "segment.ms", *b)
    assert js == {"resource": "topic", "name": "orders", "dry_run": False,
                  "changes": [{"name": "segment.ms", "old": "600000", "new": None}]}
    cfgs = {c["name"]: c for c in ok_json("topic", "describe", "orders", *b)[0]["configs"]}
    assert cfgs["segment.ms"]["source"] == "DEFAULT_CONFIG"
    assert cfgs["retention.ms"]["value"] == "7200000"
    p = ok("topic", "alter", "orders", "-c", "retention.ms=1", "--dry-run", *b)
    assert "dry run" in text(p)
    cfgs = {c["name"]: c for c in ok_json("topic", "describe", "orders", *b)[0]["configs"]}
    assert cfgs["retention.ms"]["value"] == "7200000"

    # add-partitions: by count and to a total.
    p = ok("topic", "add-partitions", "orders", "-n", "2", *b)
    assert text(p) == "topic orders now has 5 partitions (had 3)\n"
    js = ok_json("topic", "add-partitions", "orders", "--total", "8", *b)
    assert js == {"topic": "orders", "old_partitions": 5, "partitions": 8, "dry_run": False}
    assert len(admin(broker.bootstrap).list_topics(timeout=10).topics["orders"].partitions) == 8
    p = run("topic", "add-partitions", "orders", "--total", "4", *b, check=1)
    assert "topic orders already has 8 partitions" in err_text(p)

    # delete.
    p = ok("topic", "delete", "orders", "payments", *b)
    assert text(p) == "deleted topic orders\ndeleted topic payments\n"
    assert [t["name"] for t in ok_json("topic", "list", *b)] == ["audit"]
    p = run("topic", "delete", "orders", *b, check=1)
    assert err_text(p).strip() == "runnel topic delete: topic orders does not exist"
    js = ok_json("topic", "delete", "orders", "audit", "--if-exists", *b)
    assert js == [{"topic": "orders", "result": "absent", "error": None},
                  {"topic": "audit", "result": "deleted", "error": None}]


def test_missing_topic_is_named(broker):
    b = ["-b", broker.bootstrap]
    cases = [
        ["topic", "describe", "ghost"],
        ["topic", "alter", "ghost", "-c", "retention.ms=1"],
        ["topic", "delete", "ghost"],
        ["topic", "add-partitions", "ghost", "-n", "1"],
        ["consume", "ghost", "-e"],
        ["produce", "ghost"],
        ["config", "get", "topic", "ghost"],
        ["group", "reset-offsets", "g", "--topic", "ghost", "--to", "earliest"],
    ]
    for args in cases:
        if args[0] == "group" and 11 not in broker_apis(broker.bootstrap):
            continue
        p = run(*(args + b), input=b"hello\n", check=1)
        assert "topic ghost does not exist" in err_text(p), (args, err_text(p))
    # Nothing was auto-created on the way.
    assert "ghost" not in admin(broker.bootstrap).list_topics(timeout=10).topics


def test_invalid_config_names_the_key(broker):
    b = ["-b", broker.bootstrap]
    p = run("topic", "create", "t1", "-c", "retention.ms=soon", *b, check=1)
    assert "invalid config for topic t1" in err_text(p) and "retention.ms" in err_text(p), err_text(p)
    p = run("topic", "create", "t1", "-c", "no.such.config=1", *b, check=1)
    assert "no.such.config" in err_text(p)
    ok("topic", "create", "t1", *b)
    p = run("topic", "alter", "t1", "-c", "cleanup.policy=shred", *b, check=1)
    assert "invalid config for topic t1" in err_text(p) and "cleanup.policy" in err_text(p), err_text(p)
    p = run("config", "set", "broker", "log.retention.ms=-5x", *b, check=1)
    assert "log.retention.ms" in err_text(p), err_text(p)


# ---- produce and consume ----

def random_lines(n, seed):
    rnd = random.Random(seed)
    alphabet = [c for c in range(256) if c != 0x0A]
    lines = [bytes(rnd.choice(alphabet) for _ in range(rnd.randint(0, 300))) for _ in range(n)]
    lines[1] = b""
    lines[2] = b"\tleading\ttabs\tand\ttrailing\t"
    lines[3] = b"\r"
    lines[4] = b"nul\x00inside"
    lines[5] = b""
    lines[6] = "utf-8 \u00e9\u4e2d\U0001f600".encode()
    lines[7] = b"\xff\xfe invalid utf-8"
    lines[-1] = b""
    return lines


def test_produce_file_and_consume_it_back_byte_identical(broker, tmp_path):
    b = ["-b", broker.bootstrap]
    ok("topic", "create", "bytes", "-p", "1", *b)
    lines = random_lines(3000, 7)
    data = b"\n".join(lines) + b"\n"
    src = tmp_path / "in.bin"
    src.write_bytes(data)
    p = ok("produce", "bytes", str(src), *b)
    assert "3000 messages" in err_text(p)
    p = ok("consume", "bytes", "--exit-at-end", *b)
    assert p.stdout == data

    # Same messages through another client: empty lines are empty values (not null), no keys.
    msgs = consume_partition(broker.bootstrap, "bytes", 0, len(lines))
    assert [m.value() for m in msgs] == lines
    assert all(m.key() is None for m in msgs)

    # Idempotent by default: every batch carries a producer id.
    pids = fetch_producer_ids(broker.bootstrap, "bytes")
    assert pids and all(pid >= 0 for pid in pids), pids


def test_produce_stdin_multi_partition_and_json_summary(broker):
    b = ["-b", broker.bootstrap]
    ok("topic", "create", "spread", "-p", "4", *b)
    lines = [("line %d\tx" % i).encode() for i in range(1000)]
    data = b"\n".join(lines) + b"\n"
    js = ok_json("produce", "spread", *b, input=data)
    assert js == {"topic": "spread", "messages": 1000, "bytes": sum(len(l) for l in lines), "failed": 0}
    p = ok("consume", "spread", "-e", *b)
    assert sorted(p.stdout.split(b"\n")[:-1]) == sorted(lines)
    # Partition by partition, each in produce order.
    total = 0
    for part in range(4):
        p = ok("consume", "spread", "-e", "-p", part, *b)
        got = p.stdout.split(b"\n")[:-1]
        assert got == [l for l in lines if l in set(got)]
        total += len(got)
    assert total == 1000


def test_file_without_final_newline_and_no_idempotence(broker, tmp_path):
    b = ["-b", broker.bootstrap]
    ok("topic", "create", "plain", *b)
    src = tmp_path / "in.txt"
    src.write_bytes(b"a\nb\nlast")
    ok("produce", "plain", "-f", str(src), "--no-idempotence", "--acks", "1", *b)
    p = ok("consume", "plain", "-e", *b)
    assert p.stdout == b"a\nb\nlast\n"
    assert all(pid == -1 for pid in fetch_producer_ids(broker.bootstrap, "plain"))


def test_keys_headers_partition_compression_and_format(broker):
    b = ["-b", broker.bootstrap]
    ok("topic", "create", "kv", "-p", "3", *b)
    data = b"k1\tv1\nk2\tv\t2\nno-separator\n\tempty-key\n"
    for codec in ("none", "gzip", "snappy", "lz4", "zstd"):
        ok("produce", "kv", "-K", "\\t", "-H", "codec=" + codec, "-H", "empty=", "-p", "2", "-z", codec, "-q", *b,
           input=data)
    p = ok("consume", "kv", "-p", "2", "-e", "-f", "%t|%p|%o|%k|%K|%v|%V|%h\\n", *b)
    rows = text(p).splitlines()
    assert len(rows) == 20
    assert rows[0] == "kv|2|0|k1|2|v1|2|codec=none,empty="
    assert rows[1] == "kv|2|1|k2|2|v\t2|3|codec=none,empty="
    assert rows[2] == "kv|2|2||-1|no-separator|12|codec=none,empty="
    assert rows[3] == "kv|2|3||0|empty-key|9|codec=none,empty="
    assert rows[19] == "kv|2|19||0|empty-key|9|codec=zstd,empty="
    for other in (0, 1):
        assert ok("consume", "kv", "-p", other, "-e", *b).stdout == b""

    # JSON lines, with timestamps; literal %% and escapes in --format.
    out = ok("consume", "kv", "-p", "2", "-e", "-c", "4", "--json", *b).stdout.decode().splitlines()
    msgs = [json.loads(l) for l in out]
    assert [m["offset"] for m in msgs] == [0, 1, 2, 3]
    assert msgs[0]["key"] == "k1" and msgs[0]["value"] == "v1" and msgs[0]["partition"] == 2
    assert msgs[2]["key"] is None
    assert msgs[0]["headers"] == [{"key": "codec", "value": "none"}, {"key": "empty", "value": ""}]
    assert abs(msgs[0]["timestamp"] / 1000 - time.time()) < 600
    p = ok("consume", "kv", "-p", "2", "-c", "1", "-f", "100%% %o\\t%k\\n", *b)
    assert p.stdout == b"100% 0\tk1\n"


def test_consume_json_binary_values_are_base64(broker):
    b = ["-b", broker.bootstrap]
    ok("topic", "create", "bin", *b)
    ok("produce", "bin", "-q", *b, input=b"\xff\x00\xfe\nplain\n")
    msgs = [json.loads(l) for l in ok("consume", "bin", "-e", "--json", *b).stdout.splitlines()]
    assert msgs[0]["value_base64"] == "/wD+" and "value" not in msgs[0]
    assert msgs[1]["value"] == "plain"


def test_consume_from_positions(broker):
    b = ["-b", broker.bootstrap]
    ok("topic", "create", "pos", *b)
    ok("produce", "pos", "-q", *b, input=b"".join(b"m%d\n" % i for i in range(10)))
    time.sleep(0.05)
    mid_ms = int(time.time() * 1000)
    time.sleep(0.05)
    ok("produce", "pos", "-q", *b, input=b"".join(b"m%d\n" % i for i in range(10, 20)))

    def got(*args):
        return ok("consume", "pos", "-e", *(list(args) + b)).stdout.split(b"\n")[:-1]

    assert got() == [b"m%d" % i for i in range(20)]
    assert got("--from", "beginning", "-c", "3") == [b"m0", b"m1", b"m2"]
    assert got("--from", "15") == [b"m%d" % i for i in range(15, 20)]
    assert got("--from", "-3") == [b"m17", b"m18", b"m19"]
    assert got("--from", "@%d" % mid_ms) == [b"m%d" % i for i in range(10, 20)]
    assert got("--from", "@2001-01-01T00:00:00Z") == [b"m%d" % i for i in range(20)]
    assert got("--from", "@%d" % (mid_ms + 3600 * 1000)) == []
    assert got("--from", "end") == []
    p = run("consume", "pos", "--from", "500", *b, check=1)
    assert "offset 500 is out of range for topic pos partition 0" in err_text(p)
    p = run("consume", "pos", "-p", "3", *b, check=1)
    assert "topic pos has 1 partition (0-0); there is no partition 3" in err_text(p)


def test_consume_runs_until_interrupted(broker):
    b = ["-b", broker.bootstrap]
    ok("topic", "create", "live", *b)
    proc = subprocess.Popen([RUNNEL_BIN, "consume", "live", "--from", "end"] + b, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        time.sleep(2)
        ok("produce", "live", "-q", *b, input=b"late 1\nlate 2\n")
        deadline = time.time() + 30
        buf = b""
        os.set_blocking(proc.stdout.fileno(), False)
        while time.time() < deadline and buf.count(b"\n") < 2:
            chunk = proc.stdout.read()
            if chunk:
                buf += chunk
            time.sleep(0.1)
        assert buf == b"late 1\nlate 2\n"
    finally:
        proc.send_signal(2)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err


def test_produce_progress_bar_on_a_terminal(broker, tmp_path):
    b = ["-b", broker.bootstrap]
    ok("topic", "create", "big", *b)
    src = tmp_path / "big.txt"
    src.write_bytes(b"".join(b"%08d some payload to make the file larger\n" % i for i in range(300000)))
    master, slave = pty.openpty()
    proc = subprocess.Popen([RUNNEL_BIN, "produce", "big", str(src)] + b, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=slave)
    os.close(slave)
    out = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    os.close(master)
    assert proc.wait(timeout=RUN_TIMEOUT) == 0, out[-2000:]
    assert b"\r[" in out and b"100%" in out, out[-2000:]
    assert b"300000 messages" in out
    # Not on a terminal: no bar.
    p = ok("produce", "big", str(src), *b)
    assert b"\r[" not in p.stderr


def test_produce_too_large_line(broker):
    b = ["-b", broker.bootstrap]
    ok("topic", "create", "small", "-c", "max.message.bytes=1000", *b)
    p = run("produce", "small", *b, input=b"x" * 5000 + b"\n", check=1)
    assert "1 message(s) not delivered; the first, line 1: message too large for topic small" in err_text(p), err_text(p)


# ---- cluster and config ----

def test_cluster_info(broker):
    b = ["-b", broker.bootstrap]
    ok("topic", "create", "c1", "-p", "2", *b)
    p = ok("cluster", "info", *b)
    out = text(p)
    assert "controller: broker 1" in out
    assert "topics:     1 (2 partitions)" in out
    assert "1       127.0.0.1  %d" % broker.port in out
    js = ok_json("cluster", "info", *b)
    assert js["controller"] == 1 and js["topics"] == 1 and js["partitions"] == 2
    assert js["brokers"] == [{"id": 1, "host": "127.0.0.1", "port": broker.port}]
    assert isinstance(js["cluster_id"], str) and js["cluster_id"]


def test_config_get_and_set(broker):
    b = ["-b", broker.bootstrap]
    ok("topic", "create", "cfg", *b)
    # Broker configs, with their source.
    js = ok_json("config", "get", "broker", *b)
    by = {c["name"]: c for c in js}
    assert by["log.dirs"]["source"] == "STATIC_BROKER_CONFIG"
    assert by["num.partitions"]["source"] == "DEFAULT_CONFIG"
    p = ok("config", "get", "broker", "1", "log.retention.ms", *b)
    assert text(p).splitlines()[1].split() == ["log.retention.ms", "604800000", "default"]

    js = ok_json("config", "set", "broker", "log.retention.ms=3600000", *b)
    assert js["changes"] == [{"name": "log.retention.ms", "old": "604800000", "new": "3600000"}]
    ok("config", "set", "broker", "1", "log.retention.bytes=1000000000", *b)
    by = {c["name"]: c for c in ok_json("config", "get", "broker", "--non-default", *b)}
    assert by["log.retention.ms"]["value"] == "3600000"
    assert by["log.retention.ms"]["source"] == "DYNAMIC_BROKER_CONFIG"
    assert by["log.retention.bytes"]["value"] == "1000000000", "setting one broker config keeps the others"
    assert "num.partitions" not in by
    # A topic without its own value follows the broker's new one.
    tc = {c["name"]: c for c in ok_json("config", "get", "topic", "cfg", "retention.ms", *b)}
    assert tc["retention.ms"]["value"] == "3600000"
    assert tc["retention.ms"]["source"] == "DYNAMIC_BROKER_CONFIG"
    ok("config", "set", "broker", "--delete", "log.retention.ms", *b)
    by = {c["name"]: c for c in ok_json("config", "get", "broker", *b)}
    assert by["log.retention.ms"]["source"] == "DEFAULT_CONFIG"
    assert by["log.retention.bytes"]["source"] == "DYNAMIC_BROKER_CONFIG"

    # Topic configs.
    p = ok("config", "set", "topic", "cfg", "retention.ms=1000", "max.message.bytes=2000", *b)
    assert "topic cfg: retention.ms" in text(p)
    p = ok("config", "get", "topic", "cfg", "--non-default", *b)
    rows = [l.split() for l in text(p).splitlines()]
    assert rows == [["CONFIG", "VALUE", "SOURCE"], ["max.message.bytes", "2000", "topic"],
                    ["retention.bytes", "1000000000", "broker", "(dynamic)"], ["retention.ms", "1000", "topic"]]
    p = run("config", "get", "topic", "cfg", "no.such.key", *b, check=1)
    assert "topic cfg has no config named no.such.key" in err_text(p)
    p = run("config", "get", "broker", "7", *b, check=1)
    assert "broker 7 is not in the cluster (brokers: 1)" in err_text(p)


# ---- groups ----

def group_lag(js):
    return sum(o["lag"] for o in js[0]["offsets"] if o["lag"] is not None)


def test_group_lag_and_reset(broker):
    need_groups(broker)
    b = ["-b", broker.bootstrap]
    ok("topic", "create", "work", "-p", "2", *b)
    ok("produce", "work", "-q", "-p", "0", *b, input=b"".join(b"job %d\n" % i for i in range(60)))
    ok("produce", "work", "-q", "-p", "1", *b, input=b"".join(b"job %d\n" % i for i in range(60, 100)))
    p = ok("consume", "work", "-g", "workers", "-c", "30", *b)
    assert p.stdout.count(b"\n") == 30

    p = ok("group", "list", *b)
    assert ["workers", "Empty"] in [l.split() for l in text(p).splitlines()]
    assert {"group": "workers", "state": "Empty", "simple": False} in ok_json("group", "list", *b)

    js = ok_json("group", "describe", "workers", *b)
    assert js[0]["group"] == "workers" and js[0]["state"] == "Empty" and js[0]["members"] == []
    assert sum(o["committed"] for o in js[0]["offsets"] if o["committed"] is not None) == 30
    ends = {0: 60, 1: 40}
    for o in js[0]["offsets"]:
        assert o["topic"] == "work" and o["end"] == ends[o["partition"]]
        if o["committed"] is not None:  # a partition the consumer never reached has none
            assert o["lag"] == o["end"] - o["committed"]
    assert group_lag(js) == sum(ends[o["partition"]] for o in js[0]["offsets"] if o["committed"] is not None) - 30
    p = ok("group", "describe", "workers", *b)
    assert "TOPIC  PARTITION  COMMITTED  END  LAG  MEMBER" in text(p)

    # Finish: lag 0 everywhere, 100 messages consumed in all.
    p = ok("consume", "work", "-g", "workers", "-e", *b)
    assert p.stdout.count(b"\n") == 70
    js = ok_json("group", "describe", "workers", *b)
    assert len(js[0]["offsets"]) == 2 and group_lag(js) == 0

    # Dry run: shows the plan, changes nothing.
    js = ok_json("group", "reset-offsets", "workers", "--topic", "work", "--to", "earliest", "--dry-run", *b)
    assert js["dry_run"] is True and all(o["new"] == 0 for o in js["offsets"])
    assert group_lag(ok_json("group", "describe", "workers", *b)) == 0
    p = ok("group", "reset-offsets", "workers", "--topic", "work", "--to", "earliest", "--dry-run", *b)
    assert "dry run: nothing was changed" in text(p)

    # Reset to earliest: everything is lag again, and a consumer reads it all again.
    ok("group", "reset-offsets", "workers", "--topic", "work", "--to", "earliest", *b)
    assert group_lag(ok_json("group", "describe", "workers", *b)) == 100
    p = ok("consume", "work", "-g", "workers", "-e", *b)
    assert p.stdout.count(b"\n") == 100

    # To an offset (clamped to the log), to a timestamp, to latest; one partition.
    js = ok_json("group", "reset-offsets", "workers", "--topic", "work:0", "--to", "5", *b)
    assert js["offsets"] == [{"topic": "work", "partition": 0, "old": 60, "new": 5}]
    assert group_lag(ok_json("group", "describe", "workers", *b)) == 55
    js = ok_json("group", "reset-offsets", "workers", "--all-topics", "--to", "100000", *b)
    assert {o["partition"]: o["new"] for o in js["offsets"]} == ends
    js = ok_json("group", "reset-offsets", "workers", "--all-topics", "--to", "@0", *b)
    assert all(o["new"] == 0 for o in js["offsets"])
    js = ok_json("group", "reset-offsets", "workers", "--all-topics", "--to", "latest", *b)
    assert {o["partition"]: o["new"] for o in js["offsets"]} == ends

    # Delete.
    p = ok("group", "delete", "workers", *b)
    assert text(p) == "deleted group workers\n"
    p = run("group", "describe", "workers", *b, check=1)
    assert "group workers does not exist" in err_text(p)
    p = run("group", "delete", "workers", *b, check=1)
    assert "group workers does not exist" in err_text(p)


def test_group_with_an_active_member(broker):
    need_groups(broker)
    b = ["-b", broker.bootstrap]
    ok("topic", "create", "busy", "-p", "2", *b)
    ok("produce", "busy", "-q", *b, input=b"a\nb\nc\n")
    proc = subprocess.Popen([RUNNEL_BIN, "consume", "busy", "-g", "live"] + b, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 60
        js = None
        while time.time() < deadline:
            p = run("group", "describe", "live", "--json", *b)  # "does not exist" until it joins
            if p.returncode == 0:
                js = json.loads(p.stdout)
                if js[0]["state"] == "Stable" and js[0]["members"] and js[0]["members"][0]["assignment"]:
                    break
            time.sleep(0.5)
        assert js[0]["state"] == "Stable", js
        # Wait until it has printed the three messages (it flushes when idle).
        os.set_blocking(proc.stdout.fileno(), False)
        printed = b""
        while time.time() < deadline and printed.count(b"\n") < 3:
            printed += proc.stdout.read() or b""
            time.sleep(0.1)
        assert sorted(printed.split(b"\n")[:-1]) == [b"a", b"b", b"c"]
        m = js[0]["members"][0]
        assert m["client_id"] == "runnel-cli"
        assert sorted(a["partition"] for a in m["assignment"]) == [0, 1]
        assert {o["member_id"] for o in js[0]["offsets"]} == {m["member_id"]}
        p = ok("group", "describe", "live", *b)
        assert "MEMBER" in text(p) and "busy:0 busy:1" in text(p)

        p = run("group", "reset-offsets", "live", "--topic", "busy", "--to", "earliest", *b, check=1)
        assert "group live is Stable with 1 active member; stop its consumers" in err_text(p)
        p = run("group", "delete", "live", *b, check=1)
        assert "group live still has active members" in err_text(p)
    finally:
        proc.send_signal(2)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert out in (b"", None)
    # It committed what it printed on the way out.
    js = ok_json("group", "describe", "live", *b)
    assert js[0]["state"] == "Empty" and group_lag(js) == 0
