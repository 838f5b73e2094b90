"""Fixtures for integration tests: a real runnel broker process on 127.0.0.1.

Every test that takes `broker` gets a fresh data directory and a free port. The
broker runs the sanitizer build (RUNNEL_BIN, default build/dev/runnel); a clean
stop (SIGTERM) must exit 0, so leaks and sanitizer errors fail the test.
"""
import os
import signal
import socket
import subprocess
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RUNNEL_BIN = os.environ.get("RUNNEL_BIN", os.path.join(ROOT, "build", "dev", "runnel"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Broker:
    def __init__(self, data_dir, log_path, overrides=None):
        self.data_dir = str(data_dir)
        self.log_path = str(log_path)
        self.port = free_port()
        self.overrides = dict(overrides or {})
        self.proc = None
        self.starts = 0

    @property
    def bootstrap(self):
        return "127.0.0.1:%d" % self.port

    def start(self, timeout=30):
        args = [RUNNEL_BIN, "broker",
                "--override", "listeners=PLAINTEXT://127.0.0.1:%d" % self.port,
                "--override", "log.dirs=%s" % self.data_dir,
                "--override", "metrics.listeners=",
                "--override", "group.initial.rebalance.delay.ms=0"]
        for k, v in self.overrides.items():
            args += ["--override", "%s=%s" % (k, v)]
        self.log = open(self.log_path, "ab")
        self.log.write(b"==== start %d\n" % self.starts)
        self.log.flush()
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=self.log)
        self.starts += 1
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("broker exited with %s; log:\n%s" % (self.proc.returncode, self.tail()))
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("broker did not start listening; log:\n" + self.tail())

    def stop(self, sig=signal.SIGTERM, timeout=60):
        """Stop the broker; with SIGTERM, assert a clean exit (no leak, no sanitizer report)."""
        if not self.proc:
            return None
        self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
            raise AssertionError("broker did not stop within %ss; log:\n%s" % (timeout, self.tail()))
        finally:
            self.proc = None
            self.log.close()
        if sig in (signal.SIGTERM, signal.SIGINT):
            assert rc == 0, "broker exited %s on %s; log:\n%s" % (rc, sig, self.tail())
        return rc

    def kill9(self):
        return self.stop(signal.SIGKILL)

    def pause(self):
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self):
        self.proc.send_signal(signal.SIGCONT)

    def restart(self, sig=signal.SIGTERM):
        self.stop(sig)
        return self.start()

    def tail(self, n=80):
        try:
            with open(self.log_path, "rb") as f:
                return b"\n".join(f.read().splitlines()[-n:]).decode("utf-8", "replace")
        except OSError:
            return ""

    def log_text(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")


@pytest.fixture
def broker_factory(tmp_path):
    brokers = []

    def make(overrides=None, name="broker"):
        b = Broker(tmp_path / ("data-" + name), tmp_path / (name + ".log"), overrides)
        brokers.append(b)
        return b

    yield make
    errors = []
    for b in brokers:
        if b.proc is not None:
            try:
                b.stop()
            except AssertionError as e:
                errors.append(str(e))
    if errors:
        raise AssertionError("\n".join(errors))


@pytest.fixture
def broker(broker_factory):
    return broker_factory().start()


# python3-confluent-kafka 1.7.0 (Debian bookworm) can abort in its object
# finalizers while the interpreter shuts down ("none_dealloc"), after every
# test has run and the report is written. End the process with pytest's own
# exit status before that garbage collection.
def pytest_sessionfinish(session, exitstatus):
    session.config._runnel_exitstatus = int(exitstatus)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    import sys
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(getattr(config, "_runnel_exitstatus", 0))
