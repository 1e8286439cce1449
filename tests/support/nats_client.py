"""The least of a NATS client a test needs to talk to JetStream (stdlib only;
Debian ships no Python NATS client): connect, request/reply, publish with a
PubAck. Text protocol: https://docs.nats.io/reference/reference-protocols/nats-protocol

    with NatsClient(["nats://127.0.0.1:4222", ...]) as nc:
        nc.js_api("STREAM.CREATE.T", {"name": "T", "subjects": ["t"], "num_replicas": 3})
        ack = nc.request("t", b"payload")          # {"stream": "T", "seq": 1}

Not thread-safe; one request at a time. NoResponders / timeouts raise NatsError.
"""
import json
import socket
import time

REQUEST_TIMEOUT_S = 5.0


class NatsError(RuntimeError):
    pass


class NatsClient:
    def __init__(self, urls, timeout_s=REQUEST_TIMEOUT_S):
        self.timeout_s = timeout_s
        errors = []
        for url in urls if isinstance(urls, (list, tuple)) else urls.split(","):
            host, port = url.split("://", 1)[-1].rsplit(":", 1)
            try:
                self._connect(host, int(port))
                self.url = url
                break
            except (OSError, NatsError) as e:
                errors.append(f"{url}: {e}")
        else:
            raise NatsError("cannot connect: " + "; ".join(errors))
        self._next = 0
        self._inbox = f"_INBOX.t{time.monotonic_ns()}"
        self._send(f"SUB {self._inbox}.* 1\r\n".encode())

    def _connect(self, host, port):
        self.sock = socket.create_connection((host, port), timeout=self.timeout_s)
        self.buf = b""
        info = self._line()
        if not info.startswith(b"INFO "):
            raise NatsError(f"expected INFO, got {info[:80]!r}")
        self.info = json.loads(info[5:])
        connect = {"verbose": False, "pedantic": False, "headers": True, "no_responders": True,
                   "protocol": 1, "name": "loanledger-test"}
        self._send(b"CONNECT " + json.dumps(connect).encode() + b"\r\nPING\r\n")
        while True:
            line = self._line()
            if line == b"PONG":
                return
            if line.startswith(b"-ERR"):
                raise NatsError(line.decode())

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _send(self, data):
        self.sock.sendall(data)

    def _fill(self, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise NatsError("timed out")
        self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            raise NatsError("timed out") from None
        if not chunk:
            raise NatsError("connection closed")
        self.buf += chunk

    def _line(self, deadline=None):
        deadline = deadline or time.monotonic() + self.timeout_s
        while b"\r\n" not in self.buf:
            self._fill(deadline)
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n, deadline):
        while len(self.buf) < n + 2:
            self._fill(deadline)
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def request(self, subject, payload=b"", timeout_s=None, headers=None):
        """Publishes with a reply inbox (and the header lines `headers`, {name: value}, if any)
        and returns the reply (JSON-decoded if it is JSON)."""
        self._next += 1
        reply = f"{self._inbox}.{self._next}"
        if isinstance(payload, str):
            payload = payload.encode()
        if headers:
            block = ("NATS/1.0\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) +
                     "\r\n").encode()
            self._send(f"HPUB {subject} {reply} {len(block)} {len(block) + len(payload)}\r\n".encode() +
                       block + payload + b"\r\n")
        else:
            self._send(f"PUB {subject} {reply} {len(payload)}\r\n".encode() + payload + b"\r\n")
        deadline = time.monotonic() + (timeout_s or self.timeout_s)
        while True:
            line = self._line(deadline)
            if line == b"PING":
                self._send(b"PONG\r\n")
                continue
            if line.startswith(b"-ERR"):
                raise NatsError(line.decode())
            parts = line.split()
            if not parts or parts[0] not in (b"MSG", b"HMSG"):
                continue  # +OK, PONG, INFO
            size = int(parts[-1])
            data = self._exact(size, deadline)
            headers = b""
            if parts[0] == b"HMSG":
                hlen = int(parts[-2])
                headers, data = data[:hlen], data[hlen:]
            if parts[1].decode() != reply:
                continue  # a late reply to an earlier, timed-out request
            if headers.startswith(b"NATS/1.0 503"):
                raise NatsError(f"no responders on {subject}")
            try:
                return json.loads(data)
            except ValueError:
                return data

    def js_api(self, api, body=None, timeout_s=None):
        """A JetStream API call ($JS.API.<api>); raises NatsError on an error reply."""
        reply = self.request("$JS.API." + api, json.dumps(body or {}), timeout_s)
        if isinstance(reply, dict) and reply.get("error"):
            raise NatsError(f"{api}: {reply['error']}")
        return reply
