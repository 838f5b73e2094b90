"""A tiny raw Kafka protocol client for tests that must send what real clients never do."""
import socket
import struct
import time

_CRC32C_TABLE = []
for _i in range(256):
    _c = _i
    for _ in range(8):
        _c = (_c >> 1) ^ 0x82F63B78 if _c & 1 else _c >> 1
    _CRC32C_TABLE.append(_c)


def crc32c(data, crc=0):
    crc ^= 0xFFFFFFFF
    for b in data:
        crc = _CRC32C_TABLE[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def uvarint(v):
    """Unsigned LEB128 (compact lengths in flexible versions)."""
    out = bytearray()
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def varint(v):
    return uvarint((v << 1) ^ (v >> 63))


def kstr(s):
    if s is None:
        return struct.pack(">h", -1)
    b = s.encode() if isinstance(s, str) else s
    return struct.pack(">h", len(b)) + b


def record_batch(records, base_offset=0, attributes=0, producer_id=-1, producer_epoch=-1, base_sequence=-1,
                 timestamp=1_700_000_000_000, corrupt_crc=False, raw_records=None, count=None, last_offset_delta=None):
    """records: list of (key bytes|None, value bytes|None)."""
    body = bytearray()
    if raw_records is None:
        for i, (k, v) in enumerate(records):
            r = bytearray()
            r += b"\x00" + varint(0) + varint(i)
            r += varint(-1) if k is None else varint(len(k)) + k
            r += varint(-1) if v is None else varint(len(v)) + v
            r += varint(0)
            body += varint(len(r)) + r
    else:
        body += raw_records
    n = len(records) if count is None else count
    lod = (n - 1) if last_offset_delta is None else last_offset_delta
    after_crc = struct.pack(">hiqqqhii", attributes, lod, timestamp, timestamp, producer_id, producer_epoch,
                            base_sequence, n) + bytes(body)
    crc = crc32c(after_crc)
    if corrupt_crc:
        crc ^= 0xDEADBEEF
    rest = struct.pack(">ibI", 0, 2, crc) + after_crc
    return struct.pack(">qi", base_offset, len(rest)) + rest


def produce_v3(topic, partition, records_bytes, acks=-1, timeout_ms=5000):
    body = kstr(None) + struct.pack(">hi", acks, timeout_ms)
    body += struct.pack(">i", 1) + kstr(topic) + struct.pack(">i", 1) + struct.pack(">i", partition)
    body += struct.pack(">i", len(records_bytes)) + records_bytes
    return body


class Conn:
    def __init__(self, bootstrap, timeout=10):
        host, port = bootstrap.split(":")
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        self.corr = 0

    def close(self):
        self.sock.close()

    def send_raw(self, data):
        self.sock.sendall(data)

    def request(self, api_key, version, body, client_id="raw", header_v2=False):
        self.corr += 1
        hdr = struct.pack(">hhi", api_key, version, self.corr) + kstr(client_id)
        if header_v2:
            hdr += b"\x00"
        frame = hdr + body
        self.sock.sendall(struct.pack(">i", len(frame)) + frame)
        return self.corr

    def recv_frame(self):
        size = struct.unpack(">i", self._recv_exact(4))[0]
        return self._recv_exact(size)

    def _recv_exact(self, n):
        out = bytearray()
        while len(out) < n:
            chunk = self.sock.recv(n - len(out))
            if not chunk:
                raise ConnectionError("closed by broker")
            out += chunk
        return bytes(out)

    def is_closed(self, wait=5.0):
        """True if the broker closes the connection within `wait` seconds."""
        self.sock.settimeout(0.2)
        deadline = time.time() + wait
        while time.time() < deadline:
            try:
                if self.sock.recv(65536) == b"":
                    return True
            except socket.timeout:
                continue
            except OSError:
                return True
        return False


def api_versions(conn, version=0):
    conn.request(18, version, b"")
    return conn.recv_frame()


def call(bootstrap, api_key, version, body):
    """One request to this node; the response frame."""
    conn = Conn(bootstrap, timeout=20)
    try:
        conn.request(api_key, version, body)
        return conn.recv_frame()
    finally:
        conn.close()


def read_str(r, pos):
    """A nullable int16-length string of a response at pos: (str or None, next pos)."""
    n = struct.unpack(">h", r[pos:pos + 2])[0]
    pos += 2
    if n < 0:
        return None, pos
    return r[pos:pos + n].decode(), pos + n


def describe_configs_v0(bootstrap, resource_type, name, keys=None):
    """DescribeConfigs v0 of one resource on this node (keys None: all): (error code, {key: value})."""
    body = struct.pack(">i", 1) + struct.pack(">b", resource_type) + kstr(name)
    body += struct.pack(">i", -1) if keys is None else struct.pack(">i", len(keys)) + b"".join(kstr(k) for k in keys)
    r = call(bootstrap, 32, 0, body)
    pos = 4 + 4 + 4  # correlation id, throttle, one result
    code = struct.unpack(">h", r[pos:pos + 2])[0]
    _, pos = read_str(r, pos + 2)
    _, pos = read_str(r, pos + 1)
    n = struct.unpack(">i", r[pos:pos + 4])[0]
    pos += 4
    out = {}
    for _ in range(n):
        key, pos = read_str(r, pos)
        value, pos = read_str(r, pos)
        pos += 3  # read only, default, sensitive
        out[key] = value
    return code, out
