"""A fault-injecting TCP proxy for multi-broker tests (127.0.0.1 only).

One listener per node sits in front of that node's broker port; the cluster is
configured so every address a node learns for another node points at a proxy
listener (controller.quorum.voters for Raft and controller calls, the advertised
listener in the metadata image for replica fetches). All node-to-node traffic
therefore flows through here, and so does client traffic (clients learn the same
advertised addresses).

Who connects: a broker's outgoing sockets are not bound to any address, so the
proxy asks the kernel. The accepted socket's peer port is looked up in
/proc/net/tcp (the connecting socket's inode), and that inode among the open
files of each broker process (/proc/PID/fd). A connection from a broker process
belongs to that node; anything else (the test's clients) is a client.

partition(node) cuts the node off from every other node, both directions:
established node-to-node connections to or from it are dropped, and new ones are
accepted and then held silent (black-holed: requests time out, as across a real
partition) until heal(). Clients keep reaching every node, so an isolated leader
still receives produce requests. Bounded: at most MAX_CONNS proxied connections
and MAX_HELD black-holed ones; beyond that new connections are closed.
"""
import os
import socket
import threading

MAX_CONNS = 512
MAX_HELD = 256
CHUNK = 256 * 1024


def _socket_inode(local_port, remote_port):
    """The inode of the IPv4 TCP socket local_port -> remote_port on 127.0.0.1, or None."""
    try:
        with open("/proc/net/tcp") as f:
            lines = f.readlines()[1:]
    except OSError:
        return None
    for line in lines:
        parts = line.split()
        if len(parts) < 10:
            continue
        lport = int(parts[1].split(":")[1], 16)
        rport = int(parts[2].split(":")[1], 16)
        if lport == local_port and rport == remote_port and parts[9] != "0":
            return parts[9]
    return None


def _owner(inode, pids):
    """The node whose process holds socket `inode` open, or None."""
    want = "socket:[%s]" % inode
    for node, pid in pids.items():
        d = "/proc/%d/fd" % pid
        try:
            names = os.listdir(d)
        except OSError:
            continue
        for n in names:
            try:
                if os.readlink(os.path.join(d, n)) == want:
                    return node
            except OSError:
                pass
    return None


class _Conn:
    def __init__(self, src, dst, down, up):
        self.src, self.dst, self.down, self.up = src, dst, down, up
        self.closed = False


class NetProxy:
    def __init__(self, pids):
        """pids(): {node_id: pid} of the broker processes running now."""
        self._pids = pids
        self._lock = threading.Lock()
        self._cut = set()
        self._conns = []
        self._held = []  # (src, dst, socket) black-holed
        self._listeners = {}  # node -> socket
        self._stopping = False
        self.events = []  # (what, node) for failure messages
        self.seen = {}  # (src, dst) -> connections admitted; src None: a client
        self.refused = 0  # node-to-node connections black-holed or dropped by a cut

    def add(self, node, target_port):
        """Listens in front of 127.0.0.1:target_port for `node`; returns the proxy port."""
        ls = socket.socket()
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind(("127.0.0.1", 0))
        ls.listen(128)
        self._listeners[node] = ls
        threading.Thread(target=self._accept_loop, args=(node, ls, target_port), daemon=True).start()
        return ls.getsockname()[1]

    def partition(self, node):
        """Cuts `node` off from every other node (both directions) until heal()."""
        with self._lock:
            self._cut.add(node)
            victims = [c for c in self._conns if self._blocked(c.src, c.dst)]
        for c in victims:
            self._drop(c)
        self.refused += len(victims)
        self.events.append(("partition", node))

    def heal(self, node=None):
        """Ends the partition of `node` (every partition when None)."""
        with self._lock:
            if node is None:
                self._cut.clear()
            else:
                self._cut.discard(node)
            keep, release = [], []
            for h in self._held:
                (keep if self._blocked(h[0], h[1]) else release).append(h)
            self._held = keep
        for _, _, s in release:  # the sender sees its connection end and reconnects
            s.close()
        self.events.append(("heal", node))

    def isolated(self):
        with self._lock:
            return set(self._cut)

    def close(self):
        self._stopping = True
        for ls in self._listeners.values():
            try:
                ls.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            ls.close()
        with self._lock:
            conns, held = list(self._conns), list(self._held)
            self._held = []
        for c in conns:
            self._drop(c)
        for _, _, s in held:
            s.close()

    def _blocked(self, src, dst):
        """A node-to-node path crossing a cut (lock held). Clients (src None) always pass."""
        return src is not None and src != dst and (src in self._cut or dst in self._cut)

    def _accept_loop(self, node, ls, target_port):
        while not self._stopping:
            try:
                down, addr = ls.accept()
            except OSError:
                return
            try:
                self._admit(node, down, addr[1], ls.getsockname()[1], target_port)
            except Exception:
                down.close()

    def _admit(self, dst, down, peer_port, listen_port, target_port):
        inode = _socket_inode(peer_port, listen_port)
        src = _owner(inode, self._pids()) if inode else None
        with self._lock:
            self.seen[(src, dst)] = self.seen.get((src, dst), 0) + 1
            if self._blocked(src, dst):
                self.refused += 1
                if len(self._held) >= MAX_HELD:
                    down.close()
                else:
                    self._held.append((src, dst, down))
                return
            if len(self._conns) >= MAX_CONNS:
                down.close()
                return
        try:
            up = socket.create_connection(("127.0.0.1", target_port), timeout=5)
        except OSError:
            down.close()  # the broker is down: the caller sees a refused connection
            return
        up.settimeout(None)
        for s in (down, up):
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        c = _Conn(src, dst, down, up)
        with self._lock:
            if self._blocked(src, dst):  # cut while connecting
                c.closed = True
            else:
                self._conns.append(c)
        if c.closed:
            down.close()
            up.close()
            return
        threading.Thread(target=self._pump, args=(c, down, up), daemon=True).start()
        threading.Thread(target=self._pump, args=(c, up, down), daemon=True).start()

    def _pump(self, c, a, b):
        try:
            while True:
                data = a.recv(CHUNK)
                if not data:
                    break
                b.sendall(data)
        except OSError:
            pass
        self._drop(c)

    def _drop(self, c):
        with self._lock:
            if c.closed:
                return
            c.closed = True
            if c in self._conns:
                self._conns.remove(c)
        for s in (c.down, c.up):
            try:
                s.shutdown(socket.SHUT_RDWR)  # wakes the other pump, even inside sendall
            except OSError:
                pass
            s.close()
