"""Servers for tests on ports the kernel picks (docs: tests/support/README.md).
Python 3 stdlib only.

    srv = start_loanledgerd(build, data, tokens, log)   # --listen/--metrics-listen 127.0.0.1:0
    srv.address("listen")      # "127.0.0.1:40123", from its --ready-file
    srv.port("metrics")        # 40124
    srv.kill9(); srv.stop()    # by PID; stop() returns the exit code

    prom = start_prometheus(config, tsdb, log)  # --web.listen-address=127.0.0.1:0
    prom.base_url              # "http://127.0.0.1:40125"

    nats = start_nats_server(work_dir)          # -p -1 -m -1, its ports file
    nats.client_url            # "nats://127.0.0.1:40126"

Every server binds port 0 itself and reports the port it got: loanledgerd in
its --ready-file (server/README.md, "Ready file"), Prometheus in its log line
`msg="Listening on" address=HOST:PORT` (2.42, Debian bookworm), nats-server in
its --ports_file_dir file. No port is picked here and handed over. Each
process is this Python process's child, waited for within a bound, stopped by
its own PID (SIGTERM, then SIGKILL) and reaped. A 3-node NATS cluster:
nats_cluster.py.
"""
import json
import os
import re
import signal
import subprocess
import time

HOST = "127.0.0.1"
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 60.0
POLL_S = 0.02


class ServerError(RuntimeError):
    pass


def read_ready_file(path):
    """loanledgerd's --ready-file as a dict ("pid" -> "123", "listen" -> "127.0.0.1:7700", ...);
    None when it does not exist. The server renames it into place whole, so it is never partial."""
    try:
        with open(path) as f:
            text = f.read()
    except FileNotFoundError:
        return None
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def port_of(address):
    """"127.0.0.1:7700" / "[::1]:7700" -> 7700."""
    return int(address.rsplit(":", 1)[1])


def _log_tail(path, lines=40):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except FileNotFoundError:
        return "(no log)\n"


class Process:
    """A child process started by this module; stopped by its PID."""

    def __init__(self, proc, log, what):
        self.proc, self.log, self.what = proc, log, what

    @property
    def pid(self):
        return self.proc.pid

    def running(self):
        return self.proc.poll() is None

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self, timeout_s=STOP_TIMEOUT_S):
        """SIGTERM and wait; SIGKILL after timeout_s. Returns the exit code (-9 when killed)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    def _wait_for(self, probe, timeout_s):
        """Polls probe() until it returns a value; raises ServerError (after a SIGKILL) if the
        process exits or timeout_s passes first."""
        deadline = time.monotonic() + timeout_s
        while True:
            value = probe()
            if value is not None:
                return value
            if self.proc.poll() is not None:
                raise ServerError(f"{self.what} exited with {self.proc.returncode} during start-up:\n"
                                  + _log_tail(self.log))
            if time.monotonic() > deadline:
                self.kill9()
                raise ServerError(f"{self.what} not up within {timeout_s:.0f} s:\n" + _log_tail(self.log))
            time.sleep(POLL_S)


class Loanledgerd(Process):
    def __init__(self, proc, log, ready_file):
        super().__init__(proc, log, "loanledgerd")
        self.ready_file = ready_file
        self.addresses = {}  # listener name -> "HOST:PORT", from the ready file

    def address(self, name="listen"):
        return self.addresses[name]

    def port(self, name="listen"):
        return port_of(self.addresses[name])


def start_loanledgerd(build, data, tokens, log, extra_args=(), ready_file=None, append_log=False,
                      timeout_s=START_TIMEOUT_S, binary=None):
    """Starts BUILD/server/loanledgerd on 127.0.0.1 port 0 (protocol and metrics) with stderr to
    `log`, and returns once its ready file (default: LOG.ready) names this process's PID."""
    ready_file = ready_file or f"{log}.ready"
    try:
        os.unlink(ready_file)  # an earlier run's must not be read as this one's
    except FileNotFoundError:
        pass
    argv = [binary or os.path.join(build, "server/loanledgerd"), "--listen", f"{HOST}:0",
            "--metrics-listen", f"{HOST}:0", "--data", data, "--tokens", tokens,
            "--ready-file", ready_file, *extra_args]
    with open(log, "a" if append_log else "w") as err:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
    server = Loanledgerd(proc, log, ready_file)

    def ready():
        r = read_ready_file(ready_file)
        return r if r and r.get("pid") == str(proc.pid) else None

    r = server._wait_for(ready, timeout_s)
    server.addresses = {k: v for k, v in r.items() if k != "pid"}
    return server


class Prometheus(Process):
    def __init__(self, proc, log):
        super().__init__(proc, log, "prometheus")
        self.address = None  # "127.0.0.1:PORT"

    @property
    def base_url(self):
        return f"http://{self.address}"


_PROM_LISTENING = re.compile(r'msg="Listening on" address=(\S+)')


def start_prometheus(config, tsdb, log, prometheus="prometheus", extra_args=(), timeout_s=START_TIMEOUT_S):
    """Starts Prometheus with --web.listen-address=127.0.0.1:0 and returns once it logs the address it
    bound. Its `prometheus` self-scrape job (if any) keeps the target the config names."""
    with open(log, "w") as out:
        proc = subprocess.Popen([prometheus, f"--config.file={config}", f"--storage.tsdb.path={tsdb}",
                                 f"--web.listen-address={HOST}:0", *extra_args],
                                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
    server = Prometheus(proc, log)

    def listening():
        with open(log, errors="replace") as f:
            m = _PROM_LISTENING.search(f.read())
        return m.group(1) if m and port_of(m.group(1)) != 0 else None

    server.address = server._wait_for(listening, timeout_s)
    return server


class NatsServer(Process):
    def __init__(self, proc, log):
        super().__init__(proc, log, "nats-server")
        self.ports = {}  # nats-server's ports file: {"nats": ["nats://..."], "monitoring": [...], ...}

    @property
    def client_url(self):
        return self.ports["nats"][0]

    @property
    def monitoring_url(self):
        return self.ports["monitoring"][0]


def start_nats_server(work_dir, nats_server=None, extra_args=(), timeout_s=START_TIMEOUT_S):
    """One nats-server on 127.0.0.1 with client and monitoring ports chosen by the kernel (-1),
    read from the ports file it writes into work_dir; log in work_dir/nats.log."""
    nats_server = nats_server or os.environ.get("NATS_SERVER", "nats-server")
    os.makedirs(work_dir, exist_ok=True)
    log = os.path.join(work_dir, "nats.log")
    with open(log, "a") as out:
        proc = subprocess.Popen([nats_server, "-a", HOST, "-p", "-1", "-m", "-1", "--ports_file_dir", work_dir,
                                 *extra_args], stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
    server = NatsServer(proc, log)
    ports_file = os.path.join(work_dir, f"{os.path.basename(nats_server)}_{proc.pid}.ports")

    def ports():
        try:
            with open(ports_file) as f:
                return json.load(f)
        except (FileNotFoundError, json.JSONDecodeError):
            return None  # not yet, or being written (nats-server does not rename it into place)

    server.ports = server._wait_for(ports, timeout_s)
    return server
