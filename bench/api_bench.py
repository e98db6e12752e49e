"""Neutrino against upstream Neutron: the same port workload on both, in one run.

    .venv/bin/python bench/api_bench.py [--peer private|shared] [--pg] [--save out.json]

What it does, on loopback only:

1. runs the upstream peer with ``../shared/peer/start.sh`` (next to this repository):
   by default a private, fresh instance (its own temporary PEER_DIR and a free port,
   the shared peer's virtualenv reused), stopped and removed at the end; with
   ``--peer shared`` the one on 127.0.0.1:19696, used as found (started, and stopped
   again, only if it was down) with the benchmark's networks and ports removed after;
2. starts Neutrino as ``neutrino up --data-dir <temp dir> --port <free port>`` (SQLite)
   and, with ``--pg``, also ``neutrino serve`` on a scratch database of the local
   PostgreSQL (127.0.0.1:5432, user postgres), then gives the project unlimited quotas
   (the peer's configuration already has them);
3. runs the same workload on each server: N sequential port creates on a fresh
   network with a /16 subnet (throughput, p50, p99), N port creates from C concurrent
   clients on a second such network (throughput, p99), the median of several
   ``GET /v2.0/ports?network_id=<first network>`` (all N ports), and the servers' RSS
   afterwards (summed over the server's processes: uWSGI master and workers upstream);
4. prints both figures, the ratios and the targets, and removes what it started.

The client is the same for both servers: one keep-alive ``http.client`` connection
per client thread (re-opened when the server closes it, as uWSGI does).  Exit status
1 when a target is missed or a request failed.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil

REPO = Path(__file__).resolve().parent.parent
PEER_SCRIPTS = REPO.parent / "shared" / "peer"
PEER_URL = "http://127.0.0.1:19696"
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


# -- a small HTTP client ------------------------------------------------------

class Client:
    """One keep-alive connection to a loopback server; JSON in, JSON out."""

    def __init__(self, url: str) -> None:
        host, _, port = url.removeprefix("http://").rstrip("/").partition(":")
        self.host, self.port = host, int(port or 80)
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=300)

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, bytes]:
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        for attempt in (1, 2):
            try:
                self.conn.request(method, path, body=data, headers=headers)
                resp = self.conn.getresponse()
                return resp.status, resp.read()
            except (ConnectionError, http.client.RemoteDisconnected,
                    http.client.CannotSendRequest):
                # the server closed an idle keep-alive connection: reconnect once
                self.conn.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def json(self, method: str, path: str, body: Any = None, expect: int = 200) -> Any:
        status, raw = self.request(method, path, body)
        if status != expect:
            raise RuntimeError(f"{method} {path}: HTTP {status} (wanted {expect}): "
                               f"{raw[:300]!r}")
        return json.loads(raw) if raw else None

    def close(self) -> None:
        self.conn.close()


def healthy(url: str) -> bool:
    client = Client(url)
    try:
        status, _ = client.request("GET", "/")
        return status == 200
    except OSError:
        return False
    finally:
        client.close()


def wait_healthy(url: str, proc: subprocess.Popen | None, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server at {url} exited with {proc.returncode}")
        if healthy(url):
            return
        time.sleep(0.1)
    raise RuntimeError(f"server at {url} did not answer within {seconds:.0f}s")


# -- measurements -------------------------------------------------------------

def percentile(values: list[float], pct: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    xs = sorted(values)
    k = (len(xs) - 1) * pct / 100
    lo = int(k)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


@dataclass
class Figures:
    server: str
    seq_rate: float = 0.0       # creates/s, one client
    seq_p50_ms: float = 0.0
    seq_p99_ms: float = 0.0
    conc_rate: float = 0.0      # creates/s, C clients
    conc_p99_ms: float = 0.0
    list_ms: float = 0.0        # median GET of the N ports
    list_kib: float = 0.0
    rss_mb: float = 0.0         # after the workload, all server processes
    processes: int = 0
    errors: list[str] = field(default_factory=list)


def make_network(client: Client, tag: str, cidr: str) -> str:
    net = client.json("POST", "/v2.0/networks",
                      {"network": {"name": f"bench-{tag}-{uuid.uuid4().hex[:6]}"}},
                      expect=201)["network"]["id"]
    client.json("POST", "/v2.0/subnets", {"subnet": {
        "network_id": net, "ip_version": 4, "cidr": cidr, "name": f"bench-{tag}"}},
        expect=201)
    return net


def create_ports(url: str, network: str, count: int, clients: int,
                 errors: list[str]) -> tuple[float, list[float]]:
    """Create ``count`` ports from ``clients`` threads; (wall seconds, latencies)."""
    latencies: list[float] = []
    lock = threading.Lock()
    counter = iter(range(count))

    def worker() -> None:
        client = Client(url)
        try:
            while True:
                with lock:
                    i = next(counter, None)
                if i is None:
                    return
                body = {"port": {"network_id": network, "name": f"p{i}"}}
                t0 = time.perf_counter()
                status, raw = client.request("POST", "/v2.0/ports", body)
                dt = time.perf_counter() - t0
                with lock:
                    latencies.append(dt)
                    if status != 201:
                        errors.append(f"HTTP {status}: {raw[:200]!r}")
        finally:
            client.close()

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    t0 = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return time.perf_counter() - t0, latencies


def server_rss(root_pid: int) -> tuple[float, int]:
    """RSS in MB summed over a process and its descendants, and how many there are."""
    root = psutil.Process(root_pid)
    procs = [root, *root.children(recursive=True)]
    total = 0
    for proc in procs:
        with suppress(psutil.NoSuchProcess):
            total += proc.memory_info().rss
    return total / 2**20, len(procs)


def run_workload(name: str, url: str, pid: int, n: int, clients: int, list_reps: int,
                 warmup: int, made: list[str], log: Callable[[str], None]) -> Figures:
    """Measure one server; the networks it creates are appended to ``made``."""
    fig = Figures(server=name)
    client = Client(url)
    try:
        if warmup:
            # the first requests of a fresh process pay for lazy imports and caches
            made.append(make_network(client, "warmup", "10.99.0.0/16"))
            create_ports(url, made[-1], warmup, 1, fig.errors)
        made.append(seq_net := make_network(client, "seq", "10.100.0.0/16"))
        made.append(conc_net := make_network(client, "conc", "10.101.0.0/16"))

        wall, lat = create_ports(url, seq_net, n, 1, fig.errors)
        ms = [x * 1000 for x in lat]
        fig.seq_rate, fig.seq_p50_ms, fig.seq_p99_ms = n / wall, percentile(ms, 50), \
            percentile(ms, 99)
        log(f"  {name}: {n} sequential creates: {fig.seq_rate:.1f}/s "
            f"p50 {fig.seq_p50_ms:.1f} ms p99 {fig.seq_p99_ms:.1f} ms")

        wall, lat = create_ports(url, conc_net, n, clients, fig.errors)
        ms = [x * 1000 for x in lat]
        fig.conc_rate, fig.conc_p99_ms = n / wall, percentile(ms, 99)
        log(f"  {name}: {n} creates from {clients} clients: {fig.conc_rate:.1f}/s "
            f"p99 {fig.conc_p99_ms:.1f} ms")

        times = []
        for _ in range(list_reps):
            t0 = time.perf_counter()
            status, raw = client.request("GET", f"/v2.0/ports?network_id={seq_net}")
            times.append(time.perf_counter() - t0)
            if status != 200:
                raise RuntimeError(f"{name}: listing ports: HTTP {status}: {raw[:200]!r}")
            listed = len(json.loads(raw)["ports"])
            if listed != n:
                fig.errors.append(f"listing returned {listed} ports, expected {n}")
            fig.list_kib = len(raw) / 1024
        fig.list_ms = statistics.median(times) * 1000
        log(f"  {name}: GET {n} ports ({fig.list_kib:.0f} KiB): median "
            f"{fig.list_ms:.1f} ms of {list_reps}")
    finally:
        client.close()
    fig.rss_mb, fig.processes = server_rss(pid)
    log(f"  {name}: RSS {fig.rss_mb:.1f} MB over {fig.processes} process(es)")
    if fig.errors:
        log(f"  {name}: {len(fig.errors)} error(s), first: {fig.errors[0]}")
    return fig


def remove_networks(url: str, networks: list[str]) -> None:
    """Delete the ports, subnets and networks the workload made (on the shared peer)."""
    client = Client(url)
    try:
        for net in networks:
            ports = client.json("GET", f"/v2.0/ports?network_id={net}&fields=id")["ports"]
            for port in ports:
                client.json("DELETE", f"/v2.0/ports/{port['id']}", expect=204)
            client.json("DELETE", f"/v2.0/networks/{net}", expect=204)
    finally:
        client.close()


# -- servers ------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def peer_state_dir() -> Path:
    base = os.environ.get("PEER_DIR") or os.path.join(os.environ.get("TMPDIR", "/tmp"),
                                                      "neutron-peer")
    return Path(base) / "state"


def run_script(name: str, log: Callable[[str], None], env: dict[str, str] | None = None,
               check: bool = True) -> None:
    """Run one of the peer's scripts quietly; show its output if it fails."""
    done = subprocess.run(["bash", str(PEER_SCRIPTS / name)], env=env, capture_output=True,
                          text=True, check=False)
    if done.returncode != 0:
        log(done.stdout[-2000:] + done.stderr[-2000:])
        if check:
            raise RuntimeError(f"{PEER_SCRIPTS / name} failed with exit status "
                               f"{done.returncode}")


@contextmanager
def upstream_peer(log: Callable[[str], None]) -> Iterator[tuple[str, int, str]]:
    """(url, uWSGI master pid, backend) of the peer; stops it at the end if we started it."""
    started = False
    if not healthy(PEER_URL):
        log(f"starting the upstream peer ({PEER_SCRIPTS / 'start.sh'}) ...")
        run_script("start.sh", log)
        started = True
    state = peer_state_dir()
    try:
        pid = int((state / "uwsgi.pid").read_text())
        backend = (state / "backend").read_text().strip() if (state / "backend").exists() \
            else "?"
        yield PEER_URL, pid, backend
    finally:
        if started:
            log("stopping the upstream peer we started")
            run_script("stop.sh", log, check=False)


@contextmanager
def private_peer(log: Callable[[str], None]) -> Iterator[tuple[str, int, str]]:
    """A fresh peer of our own (start.sh with a temporary PEER_DIR and a free port).

    Fresh like the Neutrino it is compared with: an empty database and a new
    process, untouched by whoever else uses the shared peer.  It reuses the shared
    peer's virtualenv when that is built (start.sh builds one otherwise).
    """
    work = Path(tempfile.mkdtemp(prefix="neutron-peer-bench-"))
    shared_venv = peer_state_dir().parent / "venv"
    if (shared_venv / "bin" / "uwsgi").exists():
        (work / "venv").symlink_to(shared_venv)
    else:
        log("building the peer's virtualenv (a few minutes) ...")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DB", "AUTH", "RESET")}
    env.update(PEER_DIR=str(work), PORT=str(port))
    try:
        log(f"starting a private upstream peer in {work} ...")
        run_script("start.sh", log, env=env)
        pid = int((work / "state" / "uwsgi.pid").read_text())
        yield f"http://127.0.0.1:{port}", pid, "sqlite"
    finally:
        run_script("stop.sh", log, env=env, check=False)
        shutil.rmtree(work, ignore_errors=True)


@contextmanager
def neutrino_server(args: list[str], log: Callable[[str], None],
                    env: dict[str, str] | None = None) -> Iterator[tuple[str, int]]:
    """Run ``python -m neutrino.cli.main <args> --port <free>``; (url, pid)."""
    port = free_port()
    cmd = [sys.executable, "-m", "neutrino.cli.main", *args, "--host", "127.0.0.1",
           "--port", str(port)]
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryFile() as logfile:
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=logfile, stderr=subprocess.STDOUT,
                                env={**os.environ, **(env or {})})
        try:
            try:
                wait_healthy(url, proc, 60)
            except RuntimeError:
                logfile.seek(0)
                log(logfile.read().decode(errors="replace")[-2000:])
                raise
            yield url, proc.pid
        finally:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def unlimited_quotas(url: str) -> None:
    """Make the project the benchmark creates in (noauth: the default one) unlimited."""
    client = Client(url)
    try:
        net = client.json("POST", "/v2.0/networks", {"network": {"name": "bench-probe"}},
                          expect=201)["network"]
        project = net["project_id"]
        client.json("DELETE", f"/v2.0/networks/{net['id']}", expect=204)
        client.json("PUT", f"/v2.0/quotas/{project}", {"quota": {
            "network": -1, "subnet": -1, "port": -1}})
        quota = client.json("GET", f"/v2.0/quotas/{project}")["quota"]
        if any(quota.get(k) != -1 for k in ("network", "subnet", "port")):
            raise RuntimeError(f"quotas of {project} are not unlimited: {quota}")
    finally:
        client.close()


@contextmanager
def scratch_pg_database(log: Callable[[str], None]) -> Iterator[str]:
    import sqlalchemy as sa

    name = f"neutrino_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(PG_ADMIN.replace("postgresql://", "postgresql+psycopg://"),
                             isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


# -- the report ---------------------------------------------------------------

@dataclass
class Row:
    metric: str
    upstream: str
    neutrino: str
    ratio: str
    target: str
    met: bool


def compare(up: Figures, nt: Figures, clients: int, n: int) -> list[Row]:
    def faster(u: float, v: float) -> float:
        return u / v if v else float("inf")

    seq = nt.seq_rate / up.seq_rate
    conc = nt.conc_rate / up.conc_rate
    listing = faster(up.list_ms, nt.list_ms)
    rss = nt.rss_mb / up.rss_mb
    return [
        Row("port create, 1 client (creates/s)", f"{up.seq_rate:.1f}", f"{nt.seq_rate:.1f}",
            f"{seq:.1f}x", ">= 20x", seq >= 20),
        Row("port create p50, 1 client (ms)", f"{up.seq_p50_ms:.1f}", f"{nt.seq_p50_ms:.2f}",
            f"{faster(up.seq_p50_ms, nt.seq_p50_ms):.1f}x", "-", True),
        Row("port create p99, 1 client (ms)", f"{up.seq_p99_ms:.1f}", f"{nt.seq_p99_ms:.2f}",
            f"{faster(up.seq_p99_ms, nt.seq_p99_ms):.1f}x", "< 20 ms", nt.seq_p99_ms < 20),
        Row(f"port create, {clients} clients (creates/s)", f"{up.conc_rate:.1f}",
            f"{nt.conc_rate:.1f}", f"{conc:.1f}x", ">= 20x", conc >= 20),
        Row(f"port create p99, {clients} clients (ms)", f"{up.conc_p99_ms:.1f}",
            f"{nt.conc_p99_ms:.1f}", f"{faster(up.conc_p99_ms, nt.conc_p99_ms):.1f}x", "-",
            True),
        Row(f"list {n} ports, median (ms)", f"{up.list_ms:.1f}", f"{nt.list_ms:.1f}",
            f"{listing:.1f}x", ">= 10x", listing >= 10),
        Row("server RSS after (MB)", f"{up.rss_mb:.0f} ({up.processes} proc)",
            f"{nt.rss_mb:.1f} ({nt.processes} proc)", f"{rss:.2f}", "<= 0.33",
            rss <= 1 / 3),
    ]


def table(rows: list[Row]) -> str:
    head = ("metric", "upstream", "neutrino", "ratio", "target", "met?")
    body = [(r.metric, r.upstream, r.neutrino, r.ratio, r.target,
             ("yes" if r.met else "NO") if r.target != "-" else "") for r in rows]
    widths = [max(len(x[i]) for x in [head, *body]) for i in range(len(head))]
    lines = ["| " + " | ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)) + " |",
             "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    for row in body:
        lines.append("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True))
                     + " |")
    return "\n".join(lines)


def machine() -> str:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = psutil.virtual_memory().total / 2**30
    return (f"{os.cpu_count()} cores {model}, {mem:.0f} GiB RAM, {platform.system()} "
            f"{platform.release()}, Python {platform.python_version()}")


# -- main ---------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--ports", "-n", type=int, default=500, help="ports per phase (500)")
    p.add_argument("--clients", "-c", type=int, default=8, help="concurrent clients (8)")
    p.add_argument("--list-reps", type=int, default=7, help="listings to take the median of")
    p.add_argument("--warmup", type=int, default=20,
                   help="port creates on a separate network before measuring (20)")
    p.add_argument("--peer", choices=("private", "shared"), default="private",
                   help="private (default): a fresh peer of our own on a free port, stopped "
                        "and removed at the end; shared: the one on 127.0.0.1:19696, used "
                        "as found (started and stopped again if it was down), the "
                        "benchmark's networks removed afterwards")
    p.add_argument("--pg", action="store_true",
                   help="also measure `neutrino serve` on the local PostgreSQL")
    p.add_argument("--pg-workers", type=int, default=1, help="workers for --pg (1)")
    p.add_argument("--save", type=Path, help="write the figures as JSON here")
    p.add_argument("--upstream-from", type=Path,
                   help="reuse upstream figures from a --save file instead of measuring "
                        "the peer (for quick iterations; the report says so)")
    args = p.parse_args(argv)

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    results: dict[str, Figures] = {}
    n, c = args.ports, args.clients
    with ExitStack() as stack:
        if args.upstream_from:
            saved = json.loads(args.upstream_from.read_text())["upstream"]
            results["upstream"] = Figures(**saved)
            log(f"upstream figures reused from {args.upstream_from}")
        else:
            shared = args.peer == "shared"
            url, pid, backend = stack.enter_context(
                upstream_peer(log) if shared else private_peer(log))
            log(f"upstream Neutron ({args.peer}, {backend}, uWSGI pid {pid}) at {url}")
            made: list[str] = []
            try:
                results["upstream"] = run_workload(f"upstream ({args.peer}, {backend})", url,
                                                   pid, n, c, args.list_reps, args.warmup,
                                                   made, log)
            finally:
                if shared:
                    log(f"removing the {len(made)} benchmark networks and their ports from "
                        f"the shared peer ...")
                    remove_networks(url, made)

        data_dir = Path(tempfile.mkdtemp(prefix="neutrino-bench-"))
        stack.callback(shutil.rmtree, data_dir, True)
        with neutrino_server(["up", "--data-dir", str(data_dir), "--no-dataplane",
                              "--auth", "noauth"],
                             log) as (url, pid):
            log(f"neutrino up (SQLite in {data_dir}, pid {pid}) at {url}")
            unlimited_quotas(url)
            results["neutrino"] = run_workload("neutrino (SQLite)", url, pid, n, c,
                                               args.list_reps, args.warmup, [], log)

        if args.pg:
            db_url = stack.enter_context(scratch_pg_database(log))
            # `serve`'s default is the embedded identity; the workload is noauth's
            with neutrino_server(["serve", "--database-url", db_url, "--workers",
                                  str(args.pg_workers)], log,
                                 env={"NEUTRINO_AUTH": "noauth"}) as (url, pid):
                log(f"neutrino serve (PostgreSQL, {args.pg_workers} worker(s), pid {pid}) "
                    f"at {url}")
                unlimited_quotas(url)
                results["neutrino_pg"] = run_workload("neutrino (PostgreSQL)", url, pid, n,
                                                      c, args.list_reps, args.warmup, [], log)

    up = results["upstream"]
    print(f"\n{time.strftime('%Y-%m-%d %H:%M')}  {machine()}")
    print(f"workload: {n} sequential port creates, {n} creates from {c} clients, "
          f"median of {args.list_reps} GET /v2.0/ports?network_id= ({n} ports), RSS after; "
          f"{up.server} = Neutron 29.0.0 under uWSGI"
          + (f", reused from {args.upstream_from}" if args.upstream_from else ""))
    failed = False
    for key, label in (("neutrino", "`neutrino up` on SQLite"),
                       ("neutrino_pg", f"`neutrino serve` on PostgreSQL, {args.pg_workers} "
                                       f"worker(s)")):
        if key not in results:
            continue
        rows = compare(up, results[key], c, n)
        print(f"\n{up.server} vs {label}; ratio = how many times better "
              f"(RSS: neutrino / upstream)\n{table(rows)}")
        if key == "neutrino":
            failed = not all(r.met for r in rows)
    errors = {k: len(f.errors) for k, f in results.items() if f.errors}
    if errors:
        print(f"\nrequest errors: {errors}")
    if args.save:
        args.save.write_text(json.dumps({k: asdict(v) for k, v in results.items()}, indent=1))
    return 1 if failed or errors else 0


if __name__ == "__main__":
    sys.exit(main())
