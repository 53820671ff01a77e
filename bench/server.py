"""The precheck server under load: throughput and latency of `POST /api/v1/precheck`.

Starts the real server in a separate process as `governor serve` does (its `run_server`: uvicorn
and `create_app`, the embedded engine over the development bundle, a SQLite file in a temporary
directory, the JSON access log written to a file there), creates an app key, and drives
`POST /api/v1/precheck` on loopback with an open-loop load generator: requests go out at a fixed
schedule whatever the server does, over as many keep-alive connections as needed, and each latency
is measured from the request's *scheduled* send time, so a server that falls behind shows its
queueing in the figures instead of slowing the generator down (no coordinated omission).

The mix is what a chat agent sends: plain chat text (allow), text with an e-mail address or an SSN
(redact), chat with an estimated cost (allow, and the budget reserves it), a tool call (allow), a
payment (confirm: a pending confirmation is created) and a shell command (deny). A response with
another status than 200, or another decision than the request's kind expects, is an error.

Each rate runs for `--duration` seconds after a warm-up. The first rate (300/s by default) is the
target's; the rates are then stepped up until one is not sustained, and the report names the
maximum sustained rate: the highest where the achieved rate is at least 98% of the offered one,
nothing failed and p99 is at most 10 ms.

    .venv/bin/python bench/server.py [--duration 10] [--rates 300,450,600,800,1000] [--json]

`run(rates, duration)` returns the figures. They depend on the machine (the generator shares it
with the server); nothing here asserts a timing.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import random
import select
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
for path in (REPO, REPO / "server", REPO / "cli"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from governor_server.keys import bootstrap, create_key  # noqa: E402

from governor.storage import SQLStorage  # noqa: E402

DEFAULT_RATES = (300, 450, 600, 800, 1000, 1200)
#: A rate is sustained when the server answers this share of what was offered ...
SUSTAINED_SHARE = 0.98
#: ... with no errors and a p99 (from the scheduled send time) of at most this, in ms.
SUSTAINED_P99_MS = 10.0
#: A request not answered within this many seconds is an error (timeout).
TIMEOUT_SECONDS = 5.0
#: The generator opens at most this many connections (beyond, requests wait for one).
MAX_CONNECTIONS = 512
#: An idle connection is not reused after this many seconds (uvicorn closes them after 5 s).
IDLE_SECONDS = 3.0
USERS = [f"bench-user-{i}" for i in range(50)]

_PROSE = (
    "the quarterly report shows revenue growth in every region and the team would like a short "
    "summary of the main drivers together with a list of open risks for the board meeting next "
    "week please keep it concise and mention the customer churn figures the new pricing model "
    "and the hiring plan for engineering support and sales"
)
_WORDS = _PROSE.split()


# -- the request mix --------------------------------------------------------------------------


@dataclass(frozen=True)
class Kind:
    """One kind of request of the mix: its share, and the decision it must get."""

    name: str
    weight: int
    expect: str


MIX = (
    Kind("chat", 50, "allow"),
    Kind("chat_pii", 15, "redact"),
    Kind("chat_budget", 15, "allow"),
    Kind("tool_call", 10, "allow"),
    Kind("payment", 5, "confirm"),
    Kind("shell", 5, "deny"),
)


def _text(rng: random.Random) -> str:
    """Chat text of 100 to 2,000 characters."""
    size = rng.randint(100, 2000)
    words: list[str] = []
    length = 0
    while length < size:
        word = rng.choice(_WORDS)
        words.append(word)
        length += len(word) + 1
    return " ".join(words)


def _body(kind: Kind, rng: random.Random, n: int) -> dict[str, Any]:
    user = rng.choice(USERS)
    corr = f"bench-{n}"
    if kind.name == "chat":
        return {"tool": "model.chat", "raw_text": _text(rng), "user_id": user, "corr_id": corr}
    if kind.name == "chat_pii":
        secret = (
            f"mail me at {user}@example.com"
            if rng.random() < 0.5
            else f"my SSN is 123-45-{rng.randint(1000, 9999)}"
        )
        return {
            "tool": "model.chat",
            "raw_text": f"{_text(rng)} {secret} {_text(rng)[:200]}",
            "user_id": user,
            "corr_id": corr,
        }
    if kind.name == "chat_budget":
        return {
            "tool": "model.chat",
            "raw_text": _text(rng),
            "user_id": user,
            "corr_id": corr,
            "budget_context": {"estimatedCost": 0.001},
        }
    if kind.name == "tool_call":
        return {
            "tool": "crm.lookup",
            "scope": "net.internal",
            "raw_text": f"look up the account of customer {rng.randint(1, 99999)}",
            "payload": {"args": {"customer_id": rng.randint(1, 99999), "fields": ["name"]}},
            "tags": ["tool_call"],
            "user_id": user,
            "corr_id": corr,
        }
    if kind.name == "payment":
        return {
            "tool": "payments.transfer",
            "scope": "net.external",
            "raw_text": f"transfer {rng.randint(10, 900)} EUR to supplier {rng.randint(1, 99)}",
            "payload": {"args": {"amount": rng.randint(10, 900), "currency": "EUR"}},
            "tags": ["tool_call", "payments"],
            "user_id": user,
            "corr_id": corr,
        }
    return {
        "tool": "shell.exec",
        "raw_text": "rm -rf /tmp/cache",
        "payload": {"args": {"command": "rm -rf /tmp/cache"}},
        "tags": ["tool_call"],
        "user_id": user,
        "corr_id": corr,
    }


@dataclass(frozen=True)
class Prepared:
    """A request of the mix, as the bytes sent on the wire."""

    kind: str
    expect: bytes  # the `"decision":"..."` the response must carry
    data: bytes


def prepare(key: str, port: int, count: int = 2000, seed: int = 11) -> list[Prepared]:
    """`count` requests of the mix, shuffled (the generator cycles through them)."""
    rng = random.Random(seed)
    kinds = [k for k in MIX for _ in range(k.weight)]
    out: list[Prepared] = []
    for n in range(count):
        kind = rng.choice(kinds)
        body = json.dumps(_body(kind, rng, n), separators=(",", ":")).encode()
        head = (
            f"POST /api/v1/precheck HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"X-Governs-Key: {key}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        expect = f'"decision":"{kind.expect}"'.encode()
        out.append(Prepared(kind.name, expect, head + body))
    return out


# -- the server ---------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Server:
    """A `governor serve` process and what the generator needs to use it."""

    process: subprocess.Popen[bytes]
    port: int
    app_key: str
    log: Path

    def cpu_seconds(self) -> float | None:
        """User + system CPU the server process used so far (Linux; None elsewhere)."""
        try:
            fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        ticks = os.sysconf("SC_CLK_TCK")
        return (int(fields[11]) + int(fields[12])) / ticks


# What `governor serve` runs once the database has its organisation (settings from GOVERNOR_*).
_SERVE = (
    "import sys; sys.path[:0] = {paths!r}; "
    "from governor_server import Settings; "
    "from governor_cli.commands.serve import run_server; "
    "run_server(Settings.from_env())"
).format(paths=[str(REPO), str(REPO / "server"), str(REPO / "cli")])


@contextmanager
def serve(directory: Path) -> Iterator[Server]:
    """Run `governor serve` on a free loopback port over a new SQLite file in `directory`."""
    database_url = f"sqlite:///{directory / 'governor.db'}"
    store = SQLStorage(database_url)
    try:
        bootstrap(store.engine)  # the default organisation (what a first start creates)
        app_key, _ = create_key(store.engine, "bench", "app")
    finally:
        store.close()
    port = _free_port()
    env = {
        **os.environ,
        "GOVERNOR_DATABASE_URL": database_url,
        "GOVERNOR_ENGINE": "regorus",
        "GOVERNOR_BUNDLE": str(REPO / "bundles" / "development"),
        "GOVERNOR_HOST": "127.0.0.1",
        "GOVERNOR_PORT": str(port),
        "GOVERNOR_LOG_LEVEL": "INFO",
    }
    log = directory / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-c", _SERVE], env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        _wait_ready(process, port, log)
        yield Server(process, port, app_key, log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_ready(process: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + 30
    url = f"http://127.0.0.1:{port}/api/v1/health"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server exited ({process.returncode}):\n{log.read_text()}")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"the server did not answer on port {port} within 30 s:\n{log.read_text()}")


# -- the open-loop generator --------------------------------------------------------------------


class _Conn:
    """A keep-alive connection and the request in flight on it."""

    __slots__ = ("buffer", "index", "last_used", "sock")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = bytearray()
        self.index = -1
        self.last_used = time.perf_counter()


@dataclass
class Step:
    """What one rate gave: each request's scheduled, sent and answered times, and outcome."""

    rate: int
    duration: float
    scheduled: list[float] = field(default_factory=list)
    sent: list[float] = field(default_factory=list)
    done: list[float] = field(default_factory=list)
    ok: list[bool] = field(default_factory=list)
    failures: collections.Counter[str] = field(default_factory=collections.Counter)
    connections: int = 0
    server_cpu: float | None = None


class Generator:
    """Sends requests at a fixed schedule (one thread) and reads the answers (another).

    The sender sleeps until each request's scheduled time (`time.sleep` is precise to tens of
    microseconds, where an asyncio timer rounds up to whole milliseconds), takes an idle
    connection or opens a new one, and writes the request; it never waits for an answer. The
    receiver waits on epoll for answers and stamps each as it completes.
    """

    def __init__(self, port: int, requests: Sequence[Prepared]) -> None:
        self.port = port
        self.requests = requests
        self.idle: collections.deque[_Conn] = collections.deque()
        self.by_fd: dict[int, _Conn] = {}
        self.epoll = select.epoll()
        self.lock = threading.Lock()
        self.step: Step | None = None
        self.outstanding = 0
        self.wake_r, self.wake_w = os.pipe()
        self.epoll.register(self.wake_r, select.EPOLLIN)
        self.stopping = False
        self.receiver = threading.Thread(target=self._receive, name="bench-receiver", daemon=True)
        self.receiver.start()

    def close(self) -> None:
        """Stop the receiver and close every connection."""
        self.stopping = True
        os.write(self.wake_w, b"x")
        self.receiver.join(timeout=5)
        for conn in list(self.by_fd.values()):
            conn.sock.close()
        self.epoll.close()
        os.close(self.wake_r)
        os.close(self.wake_w)

    def _connect(self) -> _Conn:
        sock = socket.create_connection(("127.0.0.1", self.port))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn = _Conn(sock)
        with self.lock:
            self.by_fd[sock.fileno()] = conn
        self.epoll.register(sock.fileno(), select.EPOLLIN)
        return conn

    def run(self, rate: int, duration: float) -> Step:
        """Offer `rate` requests/s for `duration` s; return when every one is answered or late."""
        total = max(1, round(rate * duration))
        step = Step(rate, duration)
        step.scheduled = [0.0] * total
        step.sent = [0.0] * total
        step.done = [0.0] * total
        step.ok = [False] * total
        self.step = step
        self.outstanding = total
        cpu_before = self._server_cpu()
        interval = 1.0 / rate
        start = time.perf_counter() + 0.05
        requests = self.requests
        for i in range(total):
            due = start + i * interval
            step.scheduled[i] = due
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            conn = self._take()
            if conn is None:
                step.failures["no connection"] += 1
                self._finish(i, False)
                continue
            conn.index = i
            request = requests[i % len(requests)]
            step.sent[i] = time.perf_counter()
            try:
                conn.sock.sendall(request.data)
            except OSError:
                step.failures["send failed"] += 1
                self._drop(conn)
                self._finish(i, False)
        deadline = start + total * interval + TIMEOUT_SECONDS
        while self.outstanding > 0 and time.perf_counter() < deadline:
            time.sleep(0.005)
        with self.lock:
            late = [c for c in self.by_fd.values() if c.index >= 0]
        for conn in late:  # not answered in time: a timeout each
            step.failures["timeout"] += 1
            index = conn.index
            self._drop(conn)
            self._finish(index, False)
        step.connections = len(self.by_fd) + len(late)
        cpu_after = self._server_cpu()
        if cpu_before is not None and cpu_after is not None:
            step.server_cpu = cpu_after - cpu_before
        self.step = None
        return step

    server: Server | None = None

    def _server_cpu(self) -> float | None:
        return self.server.cpu_seconds() if self.server is not None else None

    def _take(self) -> _Conn | None:
        while self.idle:
            try:
                conn = self.idle.pop()
            except IndexError:
                break
            if time.perf_counter() - conn.last_used < IDLE_SECONDS:
                return conn
            self._drop(conn)  # the server may be closing it (uvicorn keeps idle ones 5 s)
        while len(self.by_fd) >= MAX_CONNECTIONS:  # wait for one (the request will be late)
            time.sleep(0.0005)
            try:
                return self.idle.pop()
            except IndexError:
                continue
        try:
            return self._connect()
        except OSError:
            return None

    def _drop(self, conn: _Conn) -> None:
        with self.lock:
            self.by_fd.pop(conn.sock.fileno(), None)
        with suppress(ValueError):
            self.idle.remove(conn)
        with suppress(OSError, ValueError):
            self.epoll.unregister(conn.sock.fileno())
        conn.index = -1
        conn.sock.close()

    def _finish(self, index: int, ok: bool) -> None:
        step = self.step
        if step is None:
            return
        step.done[index] = time.perf_counter()
        step.ok[index] = ok
        with self.lock:
            self.outstanding -= 1

    def _receive(self) -> None:
        while not self.stopping:
            for fd, _ in self.epoll.poll():
                if fd == self.wake_r:
                    return
                conn = self.by_fd.get(fd)
                if conn is not None:
                    self._readable(conn)

    def _readable(self, conn: _Conn) -> None:
        try:
            chunk = conn.sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        if not chunk:  # the server closed the connection
            index = conn.index
            self._drop(conn)
            if index >= 0 and self.step is not None:
                self.step.failures["connection closed"] += 1
                self._finish(index, False)
            return
        conn.buffer += chunk
        head_end = conn.buffer.find(b"\r\n\r\n")
        if head_end < 0:
            return
        head = bytes(conn.buffer[:head_end]).lower()
        marker = head.find(b"content-length:")
        if marker < 0:
            raise RuntimeError("the server answered without Content-Length")
        line_end = head.find(b"\r\n", marker)
        length = int(head[marker + 15 : line_end if line_end >= 0 else len(head)])
        end = head_end + 4 + length
        if len(conn.buffer) < end:
            return
        body = bytes(conn.buffer[head_end + 4 : end])
        del conn.buffer[:end]
        index = conn.index
        conn.index = -1
        step = self.step
        if step is None or index < 0:
            return
        status = head[9:12]
        ok = status == b"200"
        if not ok:
            step.failures[f"HTTP {status.decode()}"] += 1
        else:
            request = self.requests[index % len(self.requests)]
            ok = request.expect in body
            if not ok:
                step.failures[f"unexpected decision ({request.kind})"] += 1
        conn.last_used = time.perf_counter()
        self.idle.append(conn)
        self._finish(index, ok)


# -- figures ------------------------------------------------------------------------------------


def _percentile(values: Sequence[float], share: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


def summarise(step: Step) -> dict[str, Any]:
    """The figures of one rate (latencies in ms, from the scheduled send time)."""
    answered = [i for i, ok in enumerate(step.ok) if ok]
    latency = [(step.done[i] - step.scheduled[i]) * 1000 for i in answered]
    service = [(step.done[i] - step.sent[i]) * 1000 for i in answered]
    lag = [(step.sent[i] - step.scheduled[i]) * 1000 for i in range(len(step.sent)) if step.sent[i]]
    first = step.scheduled[0]
    last = max(step.done) if step.done else first
    window = max(last - first, step.duration)
    achieved = len(answered) / window
    errors = sum(step.failures.values())
    p99 = _percentile(latency, 0.99)
    figures = {
        "offered_rps": step.rate,
        "achieved_rps": round(achieved, 1),
        "requests": len(step.ok),
        "errors": errors,
        "failures": dict(step.failures),
        "p50_ms": round(_percentile(latency, 0.50), 2),
        "p90_ms": round(_percentile(latency, 0.90), 2),
        "p99_ms": round(p99, 2),
        "max_ms": round(max(latency), 2) if latency else None,
        "mean_ms": round(statistics.fmean(latency), 2) if latency else None,
        "service_p50_ms": round(_percentile(service, 0.50), 2),
        "service_p99_ms": round(_percentile(service, 0.99), 2),
        "send_lag_p99_ms": round(_percentile(lag, 0.99), 3),
        "connections": step.connections,
        "server_cpu_percent": (
            round(100 * step.server_cpu / window, 1) if step.server_cpu is not None else None
        ),
        # The server's CPU time per answered request: what bounds its rate, and less sensitive
        # than the latencies to other work on the machine.
        "server_cpu_ms_per_request": (
            round(1000 * step.server_cpu / len(answered), 2)
            if step.server_cpu is not None and answered
            else None
        ),
    }
    figures["sustained"] = (
        achieved >= SUSTAINED_SHARE * step.rate and errors == 0 and p99 <= SUSTAINED_P99_MS
    )
    return figures


def run(
    rates: Sequence[int] = DEFAULT_RATES,
    duration: float = 10.0,
    warmup: float = 3.0,
    keep_going: bool = False,
) -> dict[str, Any]:
    """Start a server, offer each rate in turn (stopping after the first one not sustained
    unless `keep_going`), and return the figures."""
    load_before = round(os.getloadavg()[0], 2)
    directory = Path(tempfile.mkdtemp(prefix="governor-bench-server-"))
    try:
        with serve(directory) as server:
            generator = Generator(server.port, prepare(server.app_key, server.port))
            generator.server = server
            try:
                warm = summarise(generator.run(min(rates[0], 200), warmup))
                steps: list[dict[str, Any]] = []
                for rate in rates:
                    time.sleep(1.0)  # let the previous step's stragglers settle
                    steps.append(summarise(generator.run(rate, duration)))
                    if not steps[-1]["sustained"] and not keep_going:
                        break
            finally:
                generator.close()
            log_lines = sum(1 for _ in server.log.open("rb"))
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    sustained = [s["offered_rps"] for s in steps if s["sustained"]]
    return {
        "machine": {
            "cpus": os.cpu_count(),
            "python": sys.version.split()[0],
            # Other work on the machine shows in the tail latencies: say how busy it was.
            "load_average_before": load_before,
            "load_average_after": round(os.getloadavg()[0], 2),
        },
        "duration_s": duration,
        "mix": {k.name: k.weight for k in MIX},
        "warmup": warm,
        "steps": steps,
        "max_sustained_rps": max(sustained) if sustained else None,
        "server_log_lines": log_lines,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per rate")
    parser.add_argument(
        "--rates",
        default=",".join(str(r) for r in DEFAULT_RATES),
        help="requests/s to offer, in order (the first is the target's; default %(default)s)",
    )
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of warm-up")
    parser.add_argument(
        "--keep-going", action="store_true", help="offer every rate, even after one failed"
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    rates = [int(r) for r in args.rates.split(",") if r.strip()]
    figures = run(rates, args.duration, args.warmup, args.keep_going)
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    machine = figures["machine"]
    print(
        f"POST /api/v1/precheck, open loop on loopback, {args.duration:g} s per rate "
        f"({machine['cpus']} CPUs, load average {machine['load_average_before']} before and "
        f"{machine['load_average_after']} after; latency from the scheduled send time)"
    )
    print(
        f"  {'offered/s':>9} {'achieved/s':>10} {'p50 ms':>7} {'p90 ms':>7} {'p99 ms':>7} "
        f"{'max ms':>7} {'errors':>6} {'conns':>5} {'srv cpu':>7} {'cpu/req':>7}"
    )
    for s in figures["steps"]:
        cpu = f"{s['server_cpu_percent']:.0f}%" if s["server_cpu_percent"] is not None else "-"
        per = s["server_cpu_ms_per_request"]
        per_request = f"{per:.2f}ms" if per is not None else "-"
        print(
            f"  {s['offered_rps']:>9} {s['achieved_rps']:>10.1f} {s['p50_ms']:>7.2f} "
            f"{s['p90_ms']:>7.2f} {s['p99_ms']:>7.2f} {s['max_ms'] or 0:>7.1f} "
            f"{s['errors']:>6} {s['connections']:>5} {cpu:>7} {per_request:>7}"
            + ("" if s["sustained"] else "   not sustained")
        )
        if s["failures"]:
            print(f"      failures: {s['failures']}")
    best = figures["max_sustained_rps"]
    print(
        f"  maximum sustained rate: {best}/s" if best else "  no rate was sustained",
        f"(achieved >= {SUSTAINED_SHARE:.0%} of offered, no errors, p99 <= {SUSTAINED_P99_MS} ms)",
    )


if __name__ == "__main__":
    main()
