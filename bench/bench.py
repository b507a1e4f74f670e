#!/usr/bin/env python3
"""Benchmark livy-gateway against nginx, HAProxy and Caddy on one machine, in one
run, with the same upstream (examples/bench_upstream.rs), certificate and htpasswd
file for all. Called by bench/run.sh, which installs the tools and builds the
binaries; see bench/README.md for what is measured and why.

The proxy under test is pinned to CPU 0, the load generator and the upstream to
CPU 1, so figures measure per-core efficiency. Each figure is the median of
--reps repetitions, proxies alternating order between repetitions. The judged
figures are taken so that this VM's drift in speed falls on the proxies compared
alike (`in_pairs`): each peer runs beside the gateway, their fixed-rate latency is
measured at the same time, and their throughput (b), (d) and the direct ceiling (c)
in short turns."""

import argparse
import base64
import contextlib
import datetime
import http.client
import json
import os
import platform
import re
import shutil
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
PROXY_CPU, LOAD_CPU = "0", "1"
USER, PASSWORD = "bench", "bench-password-1"
PREFIX = "/gateway/default/livy/v1"
BCRYPT_COST = 10
# Parts of a fixed-rate latency run whose p99 is reported on its own
# (see `latency_together`).
WINDOWS = 5
# Seconds of one proxy's turn in the throughput runs (see `throughput_turns`), and
# the name the direct ceiling takes its turns under.
TURN_S = 2
CEILING = "ceiling"
CLK_TCK = os.sysconf("SC_CLK_TCK")

# ---------------------------------------------------------------- helpers


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)


def pinned(cpu, cmd):
    return ["taskset", "-c", cpu, *cmd]


def tree_pids(pid):
    """pid and all its descendants."""
    pids, frontier = [pid], [pid]
    while frontier:
        out = subprocess.run(["ps", "-o", "pid=", "--ppid", ",".join(map(str, frontier))],
                             capture_output=True, text=True).stdout.split()
        frontier = [int(p) for p in out]
        pids += frontier
    return pids


def cpu_ticks(pid):
    total = 0
    for p in tree_pids(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        except (FileNotFoundError, IndexError):
            pass
    return total


def rss_kib(pid):
    total = 0
    for p in tree_pids(pid):
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except FileNotFoundError:
            pass
    return total


def percentile(values, q):
    if not values:
        return float("nan")
    values = sorted(values)
    k = (len(values) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


# ---------------------------------------------------------------- setup


class Env:
    """Certificates, users and binaries shared by every proxy."""

    def __init__(self, work: Path, gateway_bin: Path, upstream_bin: Path, conns_bin: Path):
        self.work, self.gateway_bin, self.upstream_bin, self.conns_bin = work, gateway_bin, upstream_bin, conns_bin
        certs = work / "certs"
        run([str(gateway_bin), "gen-cert", "--dir", str(certs)])
        self.ca, self.cert, self.key = certs / "ca.crt", certs / "gateway.crt", certs / "gateway.key"
        self.pem = certs / "combined.pem"
        self.pem.write_text(self.cert.read_text() + self.key.read_text())
        # The same bcrypt file, written by Apache's htpasswd, for everyone.
        self.bcrypt = work / "users.bcrypt"
        run(["htpasswd", "-c", "-b", "-B", "-C", str(BCRYPT_COST), str(self.bcrypt), USER, PASSWORD])
        self.bcrypt_hash = self.bcrypt.read_text().strip().split(":", 1)[1]
        # Cheapest schemes the peers support, for scenario (b).
        self.nginx_plain = work / "users.plain"
        self.nginx_plain.write_text(f"{USER}:{{PLAIN}}{PASSWORD}\n")
        cheap = run(["htpasswd", "-n", "-b", "-B", "-C", "4", USER, PASSWORD]).stdout.strip()
        self.bcrypt4_hash = cheap.split(":", 1)[1]
        self.basic = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        self.ssl = ssl.create_default_context(cafile=str(self.ca))


class Proxy:
    """One proxy under test: config, process, and how clients authenticate to it."""

    name = ""

    def __init__(self, env: Env, port: int, upstream: int):
        self.env, self.port, self.upstream = env, port, upstream
        self.dir = env.work / self.name
        self.dir.mkdir(exist_ok=True)
        self.proc = None

    def command(self, cheap: bool):
        raise NotImplementedError

    def auth_headers(self, scenario):
        """Headers a client sends in a scenario (Basic by default)."""
        return {"Authorization": self.env.basic}

    def start(self, cheap=False):
        env = dict(os.environ)
        env.update(self.environment())
        # Where each proxy's access lines go when they go to a standard stream: a file
        # on disk, as under a service manager that keeps them; emptied at each start so
        # a run's logs do not pile up.
        with open(self.dir / "stdout.log", "w") as out, open(self.dir / "stderr.log", "w") as err:
            self.proc = subprocess.Popen(pinned(PROXY_CPU, self.command(cheap)), env=env, stdout=out, stderr=err)
        return self.proc

    def environment(self):
        return {}

    def prepare(self):
        """After start: anything needed before measuring (e.g. a session cookie)."""

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def url(self, path):
        return f"https://localhost:{self.port}{PREFIX}{path}"

    def get(self, path, headers, timeout=5.0):
        conn = http.client.HTTPSConnection("localhost", self.port, context=self.env.ssl, timeout=timeout)
        try:
            conn.request("GET", PREFIX + path, headers=headers)
            response = conn.getresponse()
            response.read()
            return response.status, response.getheader("set-cookie")
        finally:
            conn.close()


class Gateway(Proxy):
    """The gateway at its default logging: an access line per request (text, on
    standard error, which `start` sends to a file) and the audit log (a JSON line per
    request in the data directory). Rate limits are off, as the peers have none."""

    name = "livy-gateway"
    # Lines added to the config (none: the defaults).
    extra = ""

    def users(self):
        """The `[auth]` lines naming where users come from."""
        return f'htpasswd = "{self.env.bcrypt}"'

    def command(self, cheap):
        # Every start from an empty data directory: (e) leaves an owner record per
        # batch it made, which a later start would load.
        shutil.rmtree(self.dir / "data", ignore_errors=True)
        cfg = self.dir / "gateway.toml"
        cfg.write_text(f"""
[server]
listen = "127.0.0.1:{self.port}"
tls_cert = "{self.env.cert}"
tls_key = "{self.env.key}"
data_dir = "{self.dir / 'data'}"
max_connections = 50000
# Every load generator connects from 127.0.0.1 (10,000 idle connections at once).
max_connections_per_address = 0
[auth]
{self.users()}
[livy]
upstreams = ["http://127.0.0.1:{self.upstream}"]
response_timeout_secs = 120
[rate_limit]
per_ip_rps = 0.0
per_user_rps = 0.0
create_per_user_per_min = 0
[admin]
enabled = false
{self.extra}
""")
        return [str(self.env.gateway_bin), "serve", "--config", str(cfg)]

    def environment(self):
        return {"TOKIO_WORKER_THREADS": "1"}

    def prepare(self):
        # The bench user's batch: created through the gateway so it records the owner.
        conn = http.client.HTTPSConnection("localhost", self.port, context=self.env.ssl, timeout=10)
        conn.request("POST", PREFIX + "/batches", body='{"file":"local:/x.jar"}',
                     headers={"Authorization": self.env.basic, "Content-Type": "application/json"})
        response = conn.getresponse()
        response.read()
        cookie = response.getheader("set-cookie")
        conn.close()
        assert response.status == 201, response.status
        self.cookie = cookie.split(";", 1)[0]

    def auth_headers(self, scenario):
        if scenario in ("b", "d", "e", "f"):
            return {"Cookie": self.cookie}
        return {"Authorization": self.env.basic}


class QuietGateway(Gateway):
    """The same gateway with its access log off (`log.level = "warn"`), the audit log
    still on: what the access log costs is the difference."""

    name = "livy-gateway-quiet"
    extra = '[log]\nlevel = "warn"'


class PolicyGateway(Gateway):
    """The gateway holding every creation to a cluster policy of ten rules
    (quotas counted, the cap on creations in flight, settings refused and dropped,
    URL schemes, resource caps, queues): what the policy costs (e) is the
    difference."""

    name = "livy-gateway-policy"
    extra = """[policy]
max_batches_per_user = 1000000000
max_creating = 10000
deny_conf = ["spark.driver.extraClassPath", "spark.executor.extraClassPath", "spark.driver.extraJavaOptions", "spark.executor.extraJavaOptions"]
drop_conf = ["spark.eventLog.*"]
allowed_url_schemes = ["local", "hdfs", "s3a"]
max_executors = 50
max_executor_memory = "16g"
max_driver_memory = "8g"
max_executor_cores = 8
queues = ["default", "adhoc"]"""


class RedisGateway(Gateway):
    """The same gateway with its state in Redis (`[state] backend = "redis"`, a
    real redis-server on the load core). With its near cache (the default), a busy
    session cookie costs one script a second, the record its path names coming in
    the same script; with `local_cache_ms = 0` (`cache=False`), one script per
    request, which is also what every request costs with rate limits on. Redis's
    CPU is measured beside the gateway's (`beside`)."""

    def __init__(self, env: Env, port: int, upstream: int, redis, cache: bool):
        # Before the base's: it names the proxy's directory after it.
        self.name = "livy-gateway-redis" if cache else "livy-gateway-redis-uncached"
        super().__init__(env, port, upstream)
        self.beside = redis.proc.pid
        self.extra = f'[state]\nbackend = "redis"\nredis_url = "{redis.url}"'
        if not cache:
            self.extra += "\nlocal_cache_ms = 0"


class DirectoryGateway(Gateway):
    """The gateway with its users in a directory (a real slapd seeded from
    tests/fixtures/ldap, search-then-bind with a service account, groups by a
    filter), Basic credentials on every request; `cache` off makes every request a
    directory search and bind."""

    name = "livy-gateway-directory"

    def __init__(self, env: Env, port: int, upstream: int, slapd, cache: bool):
        super().__init__(env, port, upstream)
        self.slapd, self.cache = slapd, cache
        self.extra = slapd.auth_section()

    def users(self):
        return "" if self.cache else "cache_ttl_secs = 0"

    def auth_headers(self, scenario):
        return {"Authorization": self.env.basic}


class JwtGateway(Gateway):
    """The gateway taking the identity provider's JWTs (`[auth.jwt]`, keys from a
    real oidc-provider, tests/oidc), one as `Bearer` on every request of (b) and
    (d): the bench user's, signed with the provider's key, fresh at each start
    (they live ten minutes)."""

    name = "livy-gateway-jwt"

    def __init__(self, env: Env, port: int, upstream: int, idp):
        super().__init__(env, port, upstream)
        self.idp = idp
        self.extra = idp.jwt_section()

    def prepare(self):
        super().prepare()
        self.bearer = self.idp.signed_for(USER)

    def auth_headers(self, scenario):
        if scenario in ("b", "d"):
            return {"Authorization": f"Bearer {self.bearer}"}
        return super().auth_headers(scenario)


class TokenGateway(Gateway):
    """The gateway with its own tokens (`[tokens]`), one as `Bearer` on every
    request of (b) and (d): the bench user's, made through the API at each start."""

    name = "livy-gateway-token"
    extra = "[tokens]\nenabled = true"

    def prepare(self):
        super().prepare()
        conn = http.client.HTTPSConnection("localhost", self.port, context=self.env.ssl, timeout=10)
        conn.request("POST", "/gateway/default/tokens", body='{"name":"bench"}',
                     headers={"Authorization": self.env.basic, "Content-Type": "application/json"})
        response = conn.getresponse()
        body = json.loads(response.read())
        conn.close()
        assert response.status == 201, response.status
        self.bearer = body["token"]

    def auth_headers(self, scenario):
        if scenario in ("b", "d"):
            return {"Authorization": f"Bearer {self.bearer}"}
        return super().auth_headers(scenario)


class Nginx(Proxy):
    name = "nginx"

    def command(self, cheap):
        users = self.env.nginx_plain if cheap else self.env.bcrypt
        cfg = self.dir / "nginx.conf"
        cfg.write_text(f"""
user root;
worker_processes 1;
worker_rlimit_nofile 20000;
pid {self.dir}/nginx.pid;
error_log {self.dir}/error.log warn;
daemon off;
events {{ worker_connections 15000; }}
http {{
  # nginx's default access log: the combined format, a write per request.
  access_log {self.dir}/access.log;
  client_body_temp_path {self.dir}/tmp;
  proxy_temp_path {self.dir}/tmp;
  upstream livy {{ server 127.0.0.1:{self.upstream}; keepalive 64; }}
  server {{
    listen 127.0.0.1:{self.port} ssl http2;
    ssl_certificate {self.env.cert};
    ssl_certificate_key {self.env.key};
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_session_cache shared:SSL:10m;
    keepalive_requests 1000000;
    auth_basic "application";
    auth_basic_user_file {users};
    location {PREFIX}/ {{
      proxy_pass http://livy/;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Authorization "";
      proxy_buffering off;
      proxy_request_buffering off;
    }}
  }}
}}
""")
        return ["nginx", "-p", str(self.dir), "-c", str(cfg)]


class HAProxy(Proxy):
    name = "haproxy"

    def command(self, cheap):
        user = f"user {USER} insecure-password {PASSWORD}" if cheap else f"user {USER} password {self.env.bcrypt_hash}"
        cfg = self.dir / "haproxy.cfg"
        cfg.write_text(f"""
global
  # HAProxy budgets two descriptors per connection; the machine's hard limit is
  # 20,000, so it cannot be told to hold the full 10,000 (the report says how many
  # it did).
  maxconn 9990
  nbthread 1
  tune.ssl.default-dh-param 2048
  # HAProxy's usual access log: a line per request (option httplog) to standard
  # output, which `start` sends to a file.
  log stdout format raw local0
defaults
  mode http
  log global
  option httplog
  timeout connect 5s
  timeout client 120s
  timeout server 120s
  timeout http-keep-alive 120s
userlist users
  {user}
frontend fe
  bind 127.0.0.1:{self.port} ssl crt {self.env.pem} alpn h2,http/1.1
  http-request auth realm application unless {{ http_auth(users) }}
  http-request del-header Authorization
  default_backend livy
backend livy
  http-reuse always
  http-request replace-path {PREFIX}(/.*) \\1
  server s1 127.0.0.1:{self.upstream}
""")
        return ["haproxy", "-db", "-f", str(cfg)]


class Caddy(Proxy):
    name = "caddy"

    def command(self, cheap):
        # Caddy verifies bcrypt only: (b) gets the lowest cost, 4.
        hashed = self.env.bcrypt4_hash if cheap else self.env.bcrypt_hash
        encoded = base64.b64encode(hashed.encode()).decode()
        cfg = self.dir / "Caddyfile"
        cfg.write_text(f"""
{{
  admin off
  auto_https off
  storage file_system {self.dir}/data
}}
https://localhost:{self.port} {{
  bind 127.0.0.1
  tls {self.env.cert} {self.env.key}
  # Caddy's access log: JSON lines on standard error, which `start` sends to a file.
  log
  basicauth {{
    {USER} {encoded}
  }}
  handle_path {PREFIX}/* {{
    reverse_proxy 127.0.0.1:{self.upstream} {{
      header_up -Authorization
      flush_interval -1
    }}
  }}
}}
""")
        return ["caddy", "run", "--config", str(cfg), "--adapter", "caddyfile"]

    def environment(self):
        return {"GOMAXPROCS": "1", "HOME": str(self.dir), "XDG_DATA_HOME": str(self.dir / "data")}


# ---------------------------------------------------------------- measurements


def wait_ready(proxy: Proxy, headers, deadline=20.0):
    """Seconds from now until the first 200 (polling every millisecond)."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < deadline:
        try:
            status, _ = proxy.get("/batches/1", headers, timeout=2.0)
            if status == 200:
                return time.monotonic() - t0
        except OSError:
            pass
        time.sleep(0.001)
    raise RuntimeError(f"{proxy.name} did not serve within {deadline}s")


def header_args(flag, headers):
    args = []
    for k, v in headers.items():
        args += [flag, f"{k}: {v}"]
    return args


def wrk(url, headers, duration, connections=64, script=None):
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", *header_args("-H", headers)]
    if script:
        cmd += ["-s", str(script)]
    out = run(pinned(LOAD_CPU, cmd + [url])).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return {"rps": rps, "requests": total, "non2xx": int(bad.group(1)) if bad else 0,
            "socket_errors": errors.group(1) if errors else ""}


def h2load(url, headers, duration, h1=False, clients=8, streams=16, rps=None, log=None, stagger_ms=None):
    """h2load for `duration` seconds; with `stagger_ms` (and `rps`), the clients are
    connected that far apart and run for `rps × duration` requests each instead."""
    if stagger_ms:
        # h2load's -r (one connection per period) excludes -D: count requests instead.
        span = ["-r", "1", f"--rate-period={stagger_ms}ms", "-n", str(clients * rps * duration)]
    else:
        span = ["-D", str(duration)]
    cmd = ["h2load", *span, "-c", str(clients), "-m", "1" if h1 else str(streams),
           *header_args("-H", headers)]
    if h1:
        cmd.append("--h1")
    if rps:
        cmd += [f"--rps={rps}"]
    if log:
        cmd += [f"--log-file={log}"]
    out = run(pinned(LOAD_CPU, cmd + [url])).stdout
    m = re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", out)
    done = re.search(r"requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed", out)
    status = re.search(r"status codes: (\d+) 2xx", out)
    return {"rps": float(m.group(1)) if m else 0.0, "requests": int(done.group(1)) if done else 0,
            "failed": int(done.group(3)) if done else -1, "ok": int(status.group(1)) if status else 0}


def latency_samples(url, headers, duration, rate, h1, work: Path, name, steady=True):
    """Durations (ms) and start times (µs) of the successful requests of 16 clients
    sending `rate` requests a second between them for `duration` seconds.

    h2load starts each client's request timer when its connection is up, and the
    connections come up in clumps, so by default the clients fire in clumps: 16 ms
    apart, of sizes that differ from run to run (8+8 in one run, 4+3+9 in the next),
    and the size of the largest clump alone moves the p99 by more than the
    difference between proxies. `steady` connects the clients one at a time, evenly
    spread over a request period, so requests arrive at an even rate; without it the
    clumps stay, as a test of bursts."""
    log = work / f"latency-{name}.log"
    clients = 16
    rps = max(1, rate // clients)
    # Whole milliseconds (all h2load takes): 1 ms for 16 clients at 62 req/s each.
    stagger = max(1, round(1000 / (rps * clients))) if steady else None
    res = h2load(url, headers, duration, h1=h1, clients=clients, rps=rps, log=log, stagger_ms=stagger)
    durations, starts = [], []
    for line in log.read_text().splitlines():
        parts = line.split()  # start (µs since the epoch), status, duration (µs)
        if len(parts) >= 3 and parts[1].startswith("2"):
            durations.append(int(parts[2]) / 1000.0)  # µs → ms
            starts.append(int(parts[0]))
    log.unlink()
    return durations, starts, res["failed"]


def latency(url, headers, duration, rate, h1, work: Path, name, steady=True):
    """p50/p99 of one latency run (see `latency_samples`)."""
    durations, starts, failed = latency_samples(url, headers, duration, rate, h1, work, name, steady)
    return {**latency_figures(durations, rate, failed), "clumps": clump_sizes(starts)}


def latency_figures(durations, rate, failed):
    """What every latency run reports: p50, p99 and how many requests it rests on."""
    return {"p50_ms": percentile(durations, 0.5), "p99_ms": percentile(durations, 0.99),
            "rate": rate, "samples": len(durations), "failed": failed}


@contextlib.contextmanager
def running(proxies):
    """The given proxies started with their cheap hash (the gateway with its session
    cookie), each pinned to the proxy core and ready; stopped afterwards."""
    try:
        for proxy in proxies:
            proxy.start(cheap=True)
        for proxy in proxies:
            wait_ready(proxy, {"Authorization": proxy.env.basic})
            proxy.prepare()
        yield
    finally:
        for proxy in proxies:
            proxy.stop()


def throughput_turns(proxies, args, upstream_port, ceiling=True):
    """Throughput (b) and (d) of the given running proxies, taking turns.

    This VM's speed drifts by a fifth within minutes, and measured one proxy after
    another, 10 s each, a proxy could meet a fast stretch and the next a slow one
    (run 9: the ceiling beside the gateway's (b) was 54.0k req/s, beside nginx's
    66.0k). So each proxy runs `TURN_S` seconds at a time, in turns, the order
    reversed every round (A B C, C B A, …) so that steady drift falls on all alike,
    for `--duration` seconds in all. The direct ceiling (c) takes its turns with
    (b), and (b)'s share of it is judged against the 0.5× target. A figure is the
    mean of its turns' rates; CPU per request is over all its turns' requests.
    Without `ceiling`, the direct ceiling takes no turns."""
    turns = max(1, args.duration // TURN_S)
    length = min(TURN_S, args.duration)
    takers = {
        "b": [(p.name, lambda p=p: measure_cpu(p, lambda: wrk(p.url("/batches/1"), p.auth_headers("b"), length)))
              for p in proxies] + ([(CEILING, lambda: direct(length, upstream_port)["c"])] if ceiling else []),
        "d": [(p.name, lambda p=p: measure_cpu(p, lambda: h2load(p.url("/batches/1"), p.auth_headers("d"), length)))
              for p in proxies],
    }
    out = {p.name: {} for p in proxies}
    for key, takes in takers.items():
        seen = {name: [] for name, _ in takes}
        for turn in range(turns):
            for name, measure in (takes if turn % 2 == 0 else takes[::-1]):
                seen[name].append(measure())
        for name, results in seen.items():
            figure = combined(results)
            if name == CEILING:
                for proxy_figures in out.values():
                    proxy_figures["c_beside"] = figure
            else:
                out[name][key] = figure
    for figures in out.values():
        if ceiling:
            figures["b_share"] = {"of_ceiling": figures["b"]["rps"] / figures["c_beside"]["rps"]}
    return out


def access_log_cost(gateway: Proxy, quiet: Proxy, args, upstream_port):
    """(b) and (d) of the gateway at its defaults and with its access log off, in
    turns (`throughput_turns`), and the share of req/s the access log costs."""
    with running([gateway, quiet]):
        found = throughput_turns([gateway, quiet], args, upstream_port, ceiling=False)
    on, off = found[gateway.name], found[quiet.name]
    out = {}
    for key in ("b", "d"):
        out[key] = off[key]["rps"]
        out[f"{key}_default"] = on[key]["rps"]
        out[f"{key}_cost"] = 1 - on[key]["rps"] / off[key]["rps"]
        out[f"{key}_turns"] = {"default": on[key]["each"], "off": off[key]["each"]}
    return out


def redis_state(gateway: Proxy, shared: Proxy, uncached: Proxy, args, upstream_port):
    """(b) and (d) of the gateway with local state and with its state in Redis,
    with its near cache and without, in turns (`throughput_turns`): the ratios to
    the local backend, and Redis's CPU per request of each."""
    with running([gateway, shared, uncached]):
        found = throughput_turns([gateway, shared, uncached], args, upstream_port, ceiling=False)
    local = found[gateway.name]
    out = {"requests": 0, "non2xx": 0}
    for proxy, suffix in ((shared, ""), (uncached, "_uncached")):
        remote = found[proxy.name]
        redis_us = []
        for key in ("b", "d"):
            out[f"{key}{suffix}"] = remote[key]["rps"]
            out[f"{key}_local"] = local[key]["rps"]
            out[f"{key}{suffix}_ratio"] = remote[key]["rps"] / local[key]["rps"]
            out[f"{key}{suffix}_cpu_us_per_req"] = remote[key].get("cpu_us_per_req")
            out[f"{key}{suffix}_turns"] = {"local": local[key]["each"], "redis": remote[key]["each"]}
            # For the report's check that the figures are of answers, not of errors.
            out["requests"] += remote[key]["requests"]
            out["non2xx"] += remote[key].get("non2xx", 0) + max(0, remote[key].get("failed", 0))
            redis_us.append((remote[key].get("beside_cpu_us_per_req", 0), remote[key]["requests"]))
        requests = sum(n for _, n in redis_us)
        out[f"redis{suffix}_cpu_us_per_req"] = sum(us * n for us, n in redis_us) / max(1, requests)
    return out


def policy_cost(gateway: Proxy, policy: Proxy, args, env: Env):
    """(e) POST /batches without a policy and with one of ten rules, in turns as
    `throughput_turns` takes them: the share of req/s the policy costs."""
    post = env.work / "post.lua"
    turns = max(1, args.duration // TURN_S)
    length = min(TURN_S, args.duration)
    takes = [(p.name, lambda p=p: measure_cpu(p, lambda: wrk(p.url("/batches"),
                                                             {**p.auth_headers("e"),
                                                              "Content-Type": "application/json"},
                                                             length, script=post)))
             for p in (gateway, policy)]
    seen = {name: [] for name, _ in takes}
    with running([gateway, policy]):
        for turn in range(turns):
            for name, measure in (takes if turn % 2 == 0 else takes[::-1]):
                seen[name].append(measure())
    plain, ruled = combined(seen[gateway.name]), combined(seen[policy.name])
    return {"e": ruled["rps"], "e_plain": plain["rps"], "e_cost": 1 - ruled["rps"] / plain["rps"],
            "e_cpu_us_per_req": ruled.get("cpu_us_per_req"),
            "e_turns": {"plain": plain["each"], "policy": ruled["each"]},
            "requests": ruled["requests"] + plain["requests"],
            "non2xx": ruled.get("non2xx", 0) + plain.get("non2xx", 0)}


def token_auth(gateway: Proxy, jwt: Proxy, token: Proxy, args, upstream_port):
    """(b) and (d) with the session cookie, with a JWT and with a gateway token on
    every request, in turns (`throughput_turns`): each token's ratio to the cookie."""
    with running([gateway, jwt, token]):
        found = throughput_turns([gateway, jwt, token], args, upstream_port, ceiling=False)
    cookie = found[gateway.name]
    out = {"requests": 0, "non2xx": 0}
    for proxy, suffix in ((jwt, "jwt"), (token, "token")):
        mine = found[proxy.name]
        for key in ("b", "d"):
            out[f"{key}_{suffix}"] = mine[key]["rps"]
            out[f"{key}_{suffix}_ratio"] = mine[key]["rps"] / cookie[key]["rps"]
            out[f"{key}_{suffix}_cpu_us_per_req"] = mine[key].get("cpu_us_per_req")
            out[f"{key}_{suffix}_turns"] = {"cookie": cookie[key]["each"], suffix: mine[key]["each"]}
            out["requests"] += mine[key]["requests"]
            out["non2xx"] += mine[key].get("non2xx", 0) + max(0, mine[key].get("failed", 0))
    return out


def start_idp(env: Env):
    """The token tests' OpenID provider (tests/clients/idp.py: oidc-provider on
    Node, tests/oidc), pinned beside the upstream."""
    run(["bash", str(ROOT / "tests" / "oidc" / "setup.sh")])
    sys.path.insert(0, str(ROOT / "tests" / "clients"))
    from idp import Idp

    idp = Idp(env.work / "idp", str(env.gateway_bin))
    run(["taskset", "-a", "-cp", LOAD_CPU, str(idp.proc.pid)])
    return idp


def start_redis(env: Env):
    """The client suite's redis-server (tests/clients/redis_server.py: an
    append-only file synced every second, Redis's default, as docs/operations.md
    recommends), pinned beside the upstream."""
    sys.path.insert(0, str(ROOT / "tests" / "clients"))
    from redis_server import RedisServer

    redis = RedisServer(env.work / "redis")
    run(["taskset", "-a", "-cp", LOAD_CPU, str(redis.proc.pid)])
    return redis


def directory_logins(env: Env, args, slapd, port, upstream_port):
    """Basic on every request for a directory user, the gateway only: (g) with the
    credential cache (after the first request, no directory round trip), (h) with it
    off (a search and a bind per request: its req/s at 16 clients, the gateway's and
    slapd's CPU per request, and one login's time for a single client)."""
    out = {}
    for key, cache in [("g", True), ("h", False)]:
        proxy = DirectoryGateway(env, port, upstream_port, slapd, cache)
        headers = proxy.auth_headers("a")
        url = proxy.url("/batches/1")
        try:
            proxy.start()
            wait_ready(proxy, headers)
            proxy.prepare()
            if cache:
                out[key] = measure_cpu(proxy, lambda: wrk(url, headers, args.duration))
                continue
            before = cpu_ticks(slapd.proc.pid)
            # 16 clients, each request as the next of 16 users: within the 32 logins
            # the gateway lets wait and the 20 checks one address may have running.
            # `GET /version`, open to every user (batch 1 is the bench user's: the
            # others would be answered 404).
            script = rotating_logins(env.work)
            version = proxy.url("/version")
            out[key] = measure_cpu(proxy, lambda: wrk(version, headers, args.duration, connections=16, script=script))
            ticks = cpu_ticks(slapd.proc.pid) - before
            out[key]["directory_cpu_us_per_req"] = ticks / CLK_TCK * 1e6 / max(1, out[key]["requests"])
            one = wrk(url, headers, args.duration, connections=1)
            out["h1"] = {**one, "ms_per_login": 1000 / one["rps"] if one["rps"] else None}
        finally:
            proxy.stop()
    return out


DIRECTORY_USERS = [f"{USER}{i}" for i in range(16)]


def start_slapd(env: Env):
    """The test suite's slapd (tests/clients/slapd.py), pinned beside the upstream,
    with the bench user and the 16 users of (h) added to the directory."""
    sys.path.insert(0, str(ROOT / "tests" / "clients"))
    from slapd import Slapd

    slapd = Slapd(env.work / "slapd", env.work / "certs")
    run(["taskset", "-a", "-cp", LOAD_CPU, str(slapd.proc.pid)])
    ldif = env.work / "bench-user.ldif"
    ldif.write_text("\n".join(f"""dn: uid={user},ou=people,dc=example,dc=org
objectClass: inetOrgPerson
uid: {user}
cn: {user}
sn: {user}
userPassword: {PASSWORD}
""" for user in [USER, *DIRECTORY_USERS]))
    run(["ldapadd", "-x", "-H", slapd.url, "-D", "cn=admin,dc=example,dc=org", "-w", "admin-secret", "-f", str(ldif)])
    return slapd


def rotating_logins(work: Path) -> Path:
    """A wrk script sending each request as the next of DIRECTORY_USERS: the
    gateway counts a check in flight against its user's and address's lockout
    thresholds (5 per user and address by default), so 16 clients logging in as
    one user would mostly be refused with 429 rather than measure logins."""
    script = work / "rotating-logins.lua"
    auths = ", ".join(
        '"Basic ' + base64.b64encode(f"{user}:{PASSWORD}".encode()).decode() + '"' for user in DIRECTORY_USERS)
    script.write_text(f"""local auths = {{{auths}}}
local i = 0
request = function()
  i = i % #auths + 1
  wrk.headers["Authorization"] = auths[i]
  return wrk.format(nil)
end
""")
    return script


def combined(results):
    """One figure from a proxy's turns: the mean rate, CPU per request over all
    their requests, and the failures summed."""
    requests = sum(r["requests"] for r in results)
    figure = {"rps": statistics.mean(r["rps"] for r in results), "requests": requests,
              "each": [r["rps"] for r in results]}
    for cpu in ("cpu_us_per_req", "beside_cpu_us_per_req"):
        if requests and all(cpu in r for r in results):
            figure[cpu] = sum(r[cpu] * r["requests"] for r in results) / requests
    for bad in ("non2xx", "failed"):
        if bad in results[0]:
            figure[bad] = sum(r[bad] for r in results)
    return figure


def latency_together(proxies, env: Env, args, rates):
    """The fixed-rate latency figures of the given running proxies, measured at the
    same time: each gets its own 16 clients at the fixed rate, all at once, first
    over HTTP/1.1 (b), then HTTP/2 (d). Each `WINDOWS`-th of the run's p99 is kept,
    to show stalls landing on all alike."""
    out = {p.name: {} for p in proxies}
    for key, h1 in [("b", True), ("d", False)]:
        found = {}

        def measure(proxy):
            found[proxy.name] = latency_samples(proxy.url("/batches/1"), proxy.auth_headers(key), args.duration,
                                                rates[key], h1, env.work, proxy.name)

        threads = [threading.Thread(target=measure, args=(proxy,)) for proxy in proxies]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        begin = min((min(starts) for _, starts, _ in found.values() if starts), default=0)
        width = args.duration * 1e6 / WINDOWS
        for name, (durations, starts, failed) in found.items():
            windows = [[] for _ in range(WINDOWS)]
            for d, t in zip(durations, starts):
                windows[min(WINDOWS - 1, int((t - begin) / width))].append(d)
            out[name][f"lat_{key}"] = {**latency_figures(durations, rates[key], failed), "together": True,
                                       "window_p99_ms": [percentile(w, 0.99) for w in windows]}
    return out


def in_pairs(proxies, order, env: Env, args, rates, upstream_port):
    """Throughput (`throughput_turns`) and fixed-rate latency (`latency_together`)
    of each peer with the gateway running beside it, one pair after another.

    This VM stalls for milliseconds now and then, and a stall decides a p99:
    measured one after another, a proxy could draw a quiet stretch or a noisy one
    (a proxy's p99 moved from 0.8 to 3 ms between repetitions minutes apart, and
    from 0.55 to 11.6 ms between 2 s slices), while measured at the same time every
    stall falls on both. Pairs rather than all four at once: with four, the proxy
    core's load (Caddy alone spends a fifth of it at this rate) and four load
    generators beside the upstream raised the p50s by half (by hand, the
    gateway's 0.31 → 0.52 ms), so the figure would no longer be "below saturation".
    The gateway's own figures are from its pairing with nginx, which the targets
    compare it with; its figures in every pairing are kept as `pairings`."""
    gateway = Gateway.name
    peers = [n for n in order if n != gateway]
    groups = [[gateway, peer] for peer in peers] if gateway in order and peers else [[n] for n in order]
    out, pairings = {}, {}
    for group in groups:
        print(f"  together: {' and '.join(group)}", file=sys.stderr, flush=True)
        members = [proxies[n] for n in group]
        with running(members):
            found = throughput_turns(members, args, upstream_port)
            for name, figures in latency_together(members, env, args, rates).items():
                found[name].update(figures)
        if len(group) == 1:
            out.update(found)
            continue
        peer = group[1]
        out[peer] = found[peer]
        pairings[peer] = found[gateway]
    if pairings:
        out[gateway] = dict(pairings.get(Nginx.name, pairings[peers[0]]))
        out[gateway]["pairings"] = {
            peer: {"b": f["b"]["rps"], "d": f["d"]["rps"], "p99_b": f["lat_b"]["p99_ms"], "p99_d": f["lat_d"]["p99_ms"]}
            for peer, f in pairings.items()}
    return out


def clump_sizes(starts, gap_us=200):
    """How the requests arrived: {requests sent together: how many times}, where
    requests started within `gap_us` of the one before count as sent together.
    With the clients connected at once, the clump sizes are decided by when each
    client's connection came up, and so differ between proxies and runs."""
    sizes, run, last = {}, 0, None
    for start in sorted(starts):
        if last is not None and start - last >= gap_us:
            sizes[run] = sizes.get(run, 0) + 1
            run = 0
        run, last = run + 1, start
    if run:
        sizes[run] = sizes.get(run, 0) + 1
    return {str(k): v for k, v in sorted(sizes.items())}


def measure_cpu(proxy: Proxy, fn):
    """`fn`'s result with the proxy's CPU per request, and that of the process it
    works with (`beside`: Redis), if any."""
    beside = getattr(proxy, "beside", None)
    before = cpu_ticks(proxy.proc.pid)
    beside_before = cpu_ticks(beside) if beside else 0
    result = fn()
    after = cpu_ticks(proxy.proc.pid)
    if result.get("requests"):
        result["cpu_us_per_req"] = (after - before) / CLK_TCK * 1e6 / result["requests"]
        if beside:
            ticks = cpu_ticks(beside) - beside_before
            result["beside_cpu_us_per_req"] = ticks / CLK_TCK * 1e6 / result["requests"]
    return result


def idle_connections(proxy: Proxy, env: Env, count):
    args = [str(env.conns_bin), "--addr", f"127.0.0.1:{proxy.port}", "--ca", str(env.ca), "--count", str(count),
            "--path", PREFIX + "/batches/1"]
    for k, v in proxy.auth_headers("b").items():
        args += ["--header", f"{k}: {v}"]
    holder = subprocess.Popen(pinned(LOAD_CPU, args), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    line = holder.stdout.readline()
    established = int(line.split()[1]) if line.startswith("ready") else 0
    time.sleep(1.0)
    rss = rss_kib(proxy.proc.pid)
    holder.stdin.close()
    holder.wait(timeout=60)
    return {"connections": established, "rss_mib": rss / 1024}


def big_log(proxy: Proxy, headers):
    """Streams the upstream's whole log through the proxy; peak RSS while it flows."""
    peak = [rss_kib(proxy.proc.pid)]
    idle = peak[0]
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], rss_kib(proxy.proc.pid))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample)
    sampler.start()
    cmd = ["curl", "-s", "-o", "/dev/null", "--cacert", str(proxy.env.ca), "-w", "%{http_code} %{size_download} %{time_total}",
           *header_args("-H", headers), proxy.url("/batches/1/log?from=0&size=-1")]
    out = run(pinned(LOAD_CPU, cmd)).stdout.split()
    done.set()
    sampler.join()
    status, size, seconds = int(out[0]), int(out[1]), float(out[2])
    return {"status": status, "bytes": size, "mib_per_s": size / seconds / 2**20,
            "rss_idle_mib": idle / 1024, "rss_peak_mib": peak[0] / 1024}


def measure_proxy(proxy: Proxy, env: Env, args, rates):
    """The figures one proxy is measured for on its own in one repetition (the rest
    in `in_pairs`)."""
    out = {}
    # (a) Basic credentials on every request, bcrypt everywhere.
    proxy.start(cheap=False)
    out["startup_s"] = wait_ready(proxy, {"Authorization": env.basic})
    proxy.prepare()
    time.sleep(0.5)
    out["rss_idle_mib"] = rss_kib(proxy.proc.pid) / 1024
    out["a"] = measure_cpu(proxy, lambda: wrk(proxy.url("/batches/1"), proxy.auth_headers("a"), args.duration))
    proxy.stop()

    # (b)…(f): the peers with their cheapest hash; the gateway with its session cookie.
    with running([proxy]):
        url = proxy.url("/batches/1")
        # Throughput (b), (d) and the fixed-rate latency are measured with the gateway
        # and a peer running side by side (`in_pairs`).
        for key, h1 in [("b", True), ("d", False)]:
            out[f"burst_{key}"] = latency(url, proxy.auth_headers(key), args.duration, rates[key], h1, env.work,
                                          proxy.name, steady=False)
        # The log download before the connection figures, whose memory an allocator
        # may keep afterwards.
        out["f"] = big_log(proxy, proxy.auth_headers("f"))
        for count in args.conns:
            out[f"conns_{count}"] = idle_connections(proxy, env, count)
        # (e) last: every creation gets a new id from the upstream, and the gateway
        # keeps an owner record for each, which would otherwise count in the memory
        # figures.
        post = env.work / "post.lua"
        out["e"] = measure_cpu(proxy, lambda: wrk(proxy.url("/batches"),
                                                  {**proxy.auth_headers("e"), "Content-Type": "application/json"},
                                                  args.duration, script=post))
    return out


def direct(duration, upstream_port):
    return {"c": wrk(f"http://127.0.0.1:{upstream_port}/batches/1", {}, duration)}


# ---------------------------------------------------------------- report

FIGURES = [
    ("a", "rps", "(a) Basic on every request, req/s", True),
    ("b", "rps", "(b) session cookie / cheapest hash, req/s", True),
    ("c_beside", "rps", "(c) ceiling in turns with (b), req/s", False),
    ("b_share", "of_ceiling", "(b) as a share of that ceiling", True),
    ("d", "rps", "(d) HTTP/2 (h2load), req/s", True),
    ("e", "rps", "(e) POST /batches, req/s", True),
    ("lat_b", "p50_ms", "(b) p50 latency at fixed rate, ms", False),
    ("lat_b", "p99_ms", "(b) p99 latency at fixed rate, ms", False),
    ("lat_d", "p50_ms", "(d) p50 latency at fixed rate, ms", False),
    ("lat_d", "p99_ms", "(d) p99 latency at fixed rate, ms", False),
    ("burst_b", "p50_ms", "(b) p50 latency, clients in clumps, ms", False),
    ("burst_b", "p99_ms", "(b) p99 latency, clients in clumps, ms", False),
    ("burst_d", "p50_ms", "(d) p50 latency, clients in clumps, ms", False),
    ("burst_d", "p99_ms", "(d) p99 latency, clients in clumps, ms", False),
    ("a", "cpu_us_per_req", "(a) proxy CPU per request, µs", False),
    ("b", "cpu_us_per_req", "(b) proxy CPU per request, µs", False),
    ("d", "cpu_us_per_req", "(d) proxy CPU per request, µs", False),
    ("", "rss_idle_mib", "RSS idle, MiB", False),
    ("conns_1000", "rss_mib", "RSS with 1,000 idle TLS connections, MiB", False),
    ("conns_10000", "rss_mib", "RSS with 10,000 idle TLS connections, MiB", False),
    ("", "startup_s", "start to first served request, ms", False),
    ("f", "mib_per_s", "(f) 1 GiB log streamed, MiB/s", True),
    ("f", "rss_peak_mib", "(f) peak RSS while streaming, MiB", False),
    ("logging_off", "b", "(b) with the access log off, req/s", False),
    ("logging_off", "b_cost", "(b) access log's cost, share of req/s", False),
    ("logging_off", "d", "(d) with the access log off, req/s", False),
    ("logging_off", "d_cost", "(d) access log's cost, share of req/s", False),
    ("g", "rps", "(g) directory user, Basic on every request, cached, req/s", False),
    ("g", "cpu_us_per_req", "(g) proxy CPU per request, µs", False),
    ("h", "rps", "(h) the same, cache off (search + bind each), req/s", False),
    ("h", "cpu_us_per_req", "(h) proxy CPU per request, µs", False),
    ("h", "directory_cpu_us_per_req", "(h) slapd CPU per request, µs", False),
    ("h1", "ms_per_login", "(h) one login's time, 1 client, ms", False),
    ("redis_state", "b", "(b) with state in Redis, req/s", False),
    ("redis_state", "b_ratio", "(b) state in Redis / local, in turns", False),
    ("redis_state", "b_cpu_us_per_req", "(b) with state in Redis, proxy CPU per request, µs", False),
    ("redis_state", "d", "(d) with state in Redis, req/s", False),
    ("redis_state", "d_ratio", "(d) state in Redis / local, in turns", False),
    ("redis_state", "redis_cpu_us_per_req", "Redis CPU per request, µs", False),
    ("redis_state", "b_uncached", "(b) state in Redis, near cache off, req/s", False),
    ("redis_state", "b_uncached_ratio", "(b) state in Redis, near cache off / local, in turns", False),
    ("redis_state", "d_uncached", "(d) state in Redis, near cache off, req/s", False),
    ("redis_state", "d_uncached_ratio", "(d) state in Redis, near cache off / local, in turns", False),
    ("redis_state", "redis_uncached_cpu_us_per_req", "Redis CPU per request, near cache off, µs", False),
    ("policy", "e", "(e) with a policy of ten rules, req/s", False),
    ("policy", "e_cost", "(e) the policy's cost, share of req/s (in turns)", False),
    ("tokens", "b_jwt", "(b) a JWT as Bearer on every request, req/s", False),
    ("tokens", "b_jwt_ratio", "(b) JWT / session cookie, in turns", False),
    ("tokens", "b_token", "(b) a gateway token as Bearer on every request, req/s", False),
    ("tokens", "b_token_ratio", "(b) gateway token / session cookie, in turns", False),
    ("tokens", "d_jwt_ratio", "(d) JWT / session cookie, in turns", False),
    ("tokens", "d_token_ratio", "(d) gateway token / session cookie, in turns", False),
]


# A measurement with more error answers than this is no figure of the proxy's speed.
MAX_ERROR_SHARE = 0.01


def error_share(measurement):
    """The share of a measurement's answers that were errors (non-2xx/3xx, or
    failed), 0 when it records none."""
    if not isinstance(measurement, dict) or not measurement.get("requests"):
        return 0.0
    bad = measurement.get("non2xx", 0) + max(0, measurement.get("failed", 0))
    return bad / measurement["requests"]


def pick(run_result, section, key):
    value = run_result.get(section, {}) if section else run_result
    if section and error_share(value) > MAX_ERROR_SHARE:
        return None
    value = value.get(key) if isinstance(value, dict) else None
    if key == "startup_s" and value is not None:
        value *= 1000
    return value


def medians(runs, names):
    table = {}
    for section, key, label, _ in FIGURES:
        for name in names:
            values = [pick(r[name], section, key) for r in runs if name in r]
            values = [v for v in values if v is not None]
            table[(label, name)] = statistics.median(values) if values else None
    return table


def machine():
    cpu = next((l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines()
                if l.startswith("model name")), platform.processor())
    mem = int(next(l.split()[1] for l in Path("/proc/meminfo").read_text().splitlines() if l.startswith("MemTotal")))
    versions = {}
    for name, cmd in [("nginx", ["nginx", "-v"]), ("haproxy", ["haproxy", "-v"]), ("caddy", ["caddy", "version"]),
                      ("wrk", ["wrk", "--version"]), ("h2load", ["h2load", "--version"]), ("slapd", ["slapd", "-VV"])]:
        p = subprocess.run(cmd, capture_output=True, text=True)
        text = (p.stdout + p.stderr).strip().splitlines()
        versions[name] = text[0] if text else "?"
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gib": round(mem / 2**20, 1),
            "kernel": platform.release(), "versions": versions}


def fmt(v):
    if v is None:
        return "–"
    if v >= 1000:
        return f"{v:,.0f}"
    if v >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def report(runs, names, args, direct_runs, rates, info, date):
    table = medians(runs, names)
    ceiling = statistics.median([d["c"]["rps"] for d in direct_runs])
    lines = [
        f"# Benchmark results ({date}{', quick' if args.quick else ''})",
        "",
        f"Machine: {info['cpu']}, {info['cores']} cores, {info['memory_gib']} GiB, Linux {info['kernel']}. "
        f"Proxy pinned to CPU {PROXY_CPU}; load generator and upstream to CPU {LOAD_CPU}. "
        f"Median of {len(runs)} repetition(s), {args.duration} s per run, proxies alternating order.",
        "",
        "Peers: " + "; ".join(f"{k}: {v}" for k, v in info["versions"].items()) + ".",
        "",
        "**Everyone at their default logging**: the gateway writes an access line per request (text, standard "
        "error to a file) and its audit log (a JSON line per request); nginx its default access log (combined "
        "format, a file); HAProxy `option httplog` to standard output, to a file; Caddy `log` (JSON on standard "
        "error, to a file). Rate limits off (the peers have none). \"With the access log off\": the same gateway "
        "with `log.level = \"warn\"` (audit log still on), in turns with it at its defaults.",
        "",
        f"Hashes: (a) bcrypt cost {BCRYPT_COST} for everyone (file written by `htpasswd -B`); (b)–(f) the gateway "
        "uses its session cookie, nginx `{PLAIN}`, HAProxy `insecure-password` (plaintext), Caddy bcrypt cost 4 "
        "(the only scheme it verifies).",
        f"Fixed rates for latency: (b) {rates['b']} req/s over HTTP/1.1, (d) {rates['d']} req/s over HTTP/2, "
        "from 16 clients connected one at a time (requests at an even rate), "
        f"{together_note(runs)}; "
        "\"in clumps\": the same with h2load's clients connected at once, which then fire together in clumps "
        "of varying size (each proxy on its own, one run).",
        f"Throughput (b), (d): each peer in turns of {TURN_S} s with the gateway, the order reversed each "
        f"round, {args.duration} s each in all; the direct ceiling (c) takes its turns with (b), and (b)'s share of "
        "it is the figure the 0.5× target is judged on. The gateway's figures are from its pairing with nginx.",
        f"(c) direct to the upstream, no proxy, once at the start of each repetition: {ceiling:,.0f} req/s "
        "(median).",
        "",
        "| figure | " + " | ".join(names) + " |",
        "|---|" + "---|" * len(names),
    ]
    gw = names[0]
    for section, key, label, _ in FIGURES:
        base = table[(label, gw)]
        cells = [fmt(base)]
        for name in names[1:]:
            v = table[(label, name)]
            ratio = f" ({v / base:.2f}×)" if v is not None and base else ""
            cells.append(fmt(v) + ratio)
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    held = []
    for name in names:
        counts = [r[name].get(f"conns_{c}", {}).get("connections") for r in runs for c in args.conns]
        held.append(f"{name} {'/'.join(str(c) for c in counts if c is not None)}")
    lines += ["", "Ratios are each peer's figure divided by the gateway's. Idle connections actually held "
              f"(per run, for {', '.join(map(str, args.conns))}): " + "; ".join(held) + ".", ""]
    left_out = [f"{name} {section} in repetition {i + 1} ({error_share(r[name][section]):.0%} errors)"
                for i, r in enumerate(runs) for name in names if name in r
                for section in {f[0] for f in FIGURES if f[0]} if error_share(r[name].get(section)) > MAX_ERROR_SHARE]
    if left_out:
        lines += [f"Left out as answered mostly with errors (over {MAX_ERROR_SHARE:.0%}): " + "; ".join(left_out)
                  + ".", ""]
    lines += targets(table, names, ceiling)
    lines += ["", "The figures with clients in clumps are not judged against a target: each proxy gets clumps "
              "of other sizes (below), so they do not compare like with like."]
    lines += repetitions(runs, names)
    return "\n".join(lines) + "\n", table, ceiling


def together_note(runs):
    """How the fixed-rate latency was taken."""
    together = any(r[n].get("lat_b", {}).get("together") for r in runs for n in r)
    return ("each peer measured at the same time as the gateway, each with its own clients (the gateway's "
            "figure from its pairing with nginx)" if together else "each proxy measured on its own")


def repetitions(runs, names):
    """Each repetition's figures behind the judged medians, in the order run: the
    medians hide how far one repetition lies from the next, which decides the p99
    and ceiling targets on this VM."""
    p50_p99 = lambda x: f"{fmt(x['p50_ms'])} / {fmt(x['p99_ms'])}"
    windows = lambda x: " ".join(fmt(v) for v in x.get("window_p99_ms", [])) or None
    clumps = lambda x: usual_clumps(x["clumps"]) if x.get("clumps") else None
    turns = lambda x: " ".join(fmt(v) for v in x.get("each", [])) or None
    pairings = lambda x: ", ".join(f"with {peer} {fmt(v['b'])} / {fmt(v['d'])} req/s, {fmt(v['p99_b'])} / "
                                   f"{fmt(v['p99_d'])} ms" for peer, v in x.items())
    # (label, section of a proxy's result ("" for the whole), cell text, separator
    # between repetitions: "; " where one repetition's text has several values).
    rows = [
        ("(b) at fixed rate, p50 / p99", "lat_b", p50_p99, ", "),
        ("(d) at fixed rate, p50 / p99", "lat_d", p50_p99, ", "),
        (f"(b) at fixed rate, p99 of each {WINDOWS}th of the run", "lat_b", windows, "; "),
        (f"(d) at fixed rate, p99 of each {WINDOWS}th of the run", "lat_d", windows, "; "),
        ("(b) clients in clumps, p50 / p99", "burst_b", p50_p99, ", "),
        ("(d) clients in clumps, p50 / p99", "burst_d", p50_p99, ", "),
        ("(b) requests per clump", "burst_b", clumps, ", "),
        ("(d) requests per clump", "burst_d", clumps, ", "),
        ("(b) req/s in each turn", "b", turns, "; "),
        ("(c) ceiling in each turn beside (b), req/s", "c_beside", turns, "; "),
        ("(d) req/s in each turn", "d", turns, "; "),
        ("gateway's (b) / (d) req/s and p99 in each pairing", "pairings", pairings, "; "),
    ]
    lines = ["", "## Each repetition", "",
             "Latency in ms; one entry per repetition in the order run (`;` between repetitions where "
             "an entry has several values). Requests per clump: the clump sizes that carried a tenth or more "
             "of the requests.", "",
             "| figure | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for label, section, cell, sep in rows:
        cells = []
        for name in names:
            values = [r[name] if not section else r[name].get(section) for r in runs if name in r]
            texts = [cell(v) for v in values if v]
            cells.append(sep.join(t for t in texts if t) or "–")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines


def usual_clumps(sizes):
    """The clump sizes that carried at least a tenth of a run's requests, e.g. "7+9"."""
    total = sum(int(k) * v for k, v in sizes.items())
    return "+".join(k for k, v in sizes.items() if int(k) * v * 10 >= total)


def targets(table, names, ceiling):
    g = lambda label: table.get((label, "livy-gateway"))
    n = lambda label: table.get((label, "nginx"))
    checks = []

    def check(text, ok):
        checks.append(f"- {'met' if ok else 'NOT met'}: {text}")

    for sc, lat in [("(b) session cookie / cheapest hash, req/s", "(b) p99 latency at fixed rate, ms"),
                    ("(d) HTTP/2 (h2load), req/s", "(d) p99 latency at fixed rate, ms")]:
        if g(sc) and n(sc):
            check(f"{sc.split(',')[0]} ≥ 1.2× nginx req/s, both at default logging: {g(sc) / n(sc):.2f}×",
                  g(sc) >= 1.2 * n(sc))
            check(f"{sc.split(',')[0]} p99 ≤ nginx's: {fmt(g(lat))} ms vs {fmt(n(lat))} ms", g(lat) <= n(lat))
    for key in ("b", "d"):
        cost = g(f"({key}) access log's cost, share of req/s")
        if cost is not None:
            check(f"({key}) the access log costs ≤ 10% of req/s (default vs off, in turns): {cost * 100:.1f}%",
                  cost <= 0.10)
    ratio = g("(b) state in Redis / local, in turns")
    if ratio is not None:
        off = g("(b) state in Redis, near cache off / local, in turns")
        check(f"(b) with state in Redis ≥ 0.75× the local backend's req/s (in turns; near cache on, as by default, "
              f"rate limits off as in every scenario here; near cache off: {fmt(off)}×): {ratio:.2f}×", ratio >= 0.75)
    cost = g("(e) the policy's cost, share of req/s (in turns)")
    if cost is not None:
        check(f"(e) a policy of ten rules costs ≤ 10% of POST /batches req/s (in turns): {cost * 100:.1f}%",
              cost <= 0.10)
    for kind, label in (("jwt", "JWT"), ("token", "gateway token")):
        ratio = g(f"(b) {label} / session cookie, in turns")
        if ratio is not None:
            check(f"(b) a {label} as Bearer on every request ≥ 0.9× the session cookie's req/s (in turns): "
                  f"{ratio:.2f}×", ratio >= 0.9)
    a = "(a) Basic on every request, req/s"
    if g(a) and n(a):
        check(f"(a) ≥ 20× nginx: {g(a) / n(a):.1f}×", g(a) >= 20 * n(a))
    b, share = "(b) session cookie / cheapest hash, req/s", g("(b) as a share of that ceiling")
    if share is not None:
        check(f"(b) ≥ 0.5× the direct ceiling (c): {share:.2f}× the ceiling in turns with it "
              f"(median of the repetitions; {g(b) / ceiling:.2f}× the median ceiling taken at the repetitions' starts)",
              share >= 0.5)
    elif g(b):
        check(f"(b) ≥ 0.5× the direct ceiling (c): {g(b) / ceiling:.2f}×", g(b) >= 0.5 * ceiling)
    idle, c10k = g("RSS idle, MiB"), g("RSS with 10,000 idle TLS connections, MiB")
    if idle is not None:
        check(f"RSS idle ≤ 30 MB: {fmt(idle)} MiB", idle * 1.048576 <= 30)
    if c10k is not None:
        check(f"RSS at 10,000 connections ≤ 150 MB: {fmt(c10k)} MiB", c10k * 1.048576 <= 150)
    start = g("start to first served request, ms")
    if start is not None:
        check(f"first request served < 100 ms after start: {fmt(start)} ms", start < 100)
    return ["## Targets", ""] + checks


def chart(table, names, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not available: no chart", file=sys.stderr)
        return
    panels = [f for f in FIGURES if f[3]] + [f for f in FIGURES if "p99" in f[2] or "RSS with 10,000" in f[2]]
    fig, axes = plt.subplots(2, (len(panels) + 1) // 2, figsize=(4 * ((len(panels) + 1) // 2), 7))
    for ax, (_, _, label, _) in zip(axes.flat, panels):
        values = [table[(label, n)] or 0 for n in names]
        ax.bar(names, values, color=["#2a6f97", "#9c9c9c", "#7c7c7c", "#5c5c5c"][: len(names)])
        ax.set_title(label, fontsize=9)
        ax.tick_params(axis="x", labelrotation=30, labelsize=8)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


# ---------------------------------------------------------------- main


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--gateway", type=Path)
    p.add_argument("--upstream", type=Path)
    p.add_argument("--conns-bin", type=Path)
    p.add_argument("--quick", action="store_true", help="a smoke run of seconds")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--duration", type=int, default=10)
    p.add_argument("--only", nargs="*", default=["livy-gateway", "nginx", "haproxy", "caddy"])
    p.add_argument("--report", type=Path, metavar="JSON",
                   help="only write the table and chart again from a run's saved results")
    args = p.parse_args()
    if args.quick:
        args.reps, args.duration = 1, 2
    args.conns = conn_counts(args.quick)
    if args.report:
        return rerender(args)
    if not (args.gateway and args.upstream and args.conns_bin):
        p.error("--gateway, --upstream and --conns-bin are needed for a run")

    work = Path(tempfile.mkdtemp(prefix="livy-bench-"))
    env = Env(work, args.gateway, args.upstream, args.conns_bin)
    (work / "post.lua").write_text(
        'wrk.method = "POST"\nwrk.body = \'{"file":"local:/opt/spark/examples.jar","className":"org.apache.spark.examples.SparkPi"}\'\n')
    upstream_port, base_port = 18998, 18443
    upstream = subprocess.Popen(pinned(LOAD_CPU, [str(args.upstream), "--listen", f"127.0.0.1:{upstream_port}"]),
                                stderr=subprocess.DEVNULL)
    time.sleep(0.3)
    classes = {c.name: c for c in [Gateway, Nginx, HAProxy, Caddy]}
    names = [n for n in classes if n in args.only]
    proxies = {n: classes[n](env, base_port + i, upstream_port) for i, n in enumerate(names)}
    gateway = Gateway.name in names
    quiet = QuietGateway(env, base_port + 10, upstream_port) if gateway else None
    slapd = start_slapd(env) if gateway else None
    redis = start_redis(env) if gateway else None
    shared = RedisGateway(env, base_port + 12, upstream_port, redis, cache=True) if gateway else None
    uncached = RedisGateway(env, base_port + 13, upstream_port, redis, cache=False) if gateway else None
    idp = start_idp(env) if gateway else None
    jwt = JwtGateway(env, base_port + 14, upstream_port, idp) if gateway else None
    token = TokenGateway(env, base_port + 15, upstream_port) if gateway else None
    ruled = PolicyGateway(env, base_port + 16, upstream_port) if gateway else None
    rates = {"b": 1000, "d": 1000}
    runs, direct_runs = [], []
    try:
        for rep in range(args.reps):
            order = names if rep % 2 == 0 else list(reversed(names))
            result = {}
            direct_runs.append(direct(args.duration, upstream_port))
            for name in order:
                print(f"repetition {rep + 1}/{args.reps}: {name}", file=sys.stderr, flush=True)
                try:
                    result[name] = measure_proxy(proxies[name], env, args, rates)
                finally:
                    proxies[name].stop()
            print(f"repetition {rep + 1}/{args.reps}: throughput and fixed-rate latency in pairs", file=sys.stderr,
                  flush=True)
            for name, figures in in_pairs(proxies, order, env, args, rates, upstream_port).items():
                result[name].update(figures)
            if gateway:
                print(f"repetition {rep + 1}/{args.reps}: access log on and off, directory logins", file=sys.stderr,
                      flush=True)
                result[Gateway.name]["logging_off"] = access_log_cost(proxies[Gateway.name], quiet, args,
                                                                      upstream_port)
                result[Gateway.name].update(directory_logins(env, args, slapd, base_port + 11, upstream_port))
                print(f"repetition {rep + 1}/{args.reps}: state local and in Redis", file=sys.stderr, flush=True)
                result[Gateway.name]["redis_state"] = redis_state(proxies[Gateway.name], shared, uncached, args,
                                                                  upstream_port)
                print(f"repetition {rep + 1}/{args.reps}: session cookie, JWT and gateway token", file=sys.stderr,
                      flush=True)
                result[Gateway.name]["tokens"] = token_auth(proxies[Gateway.name], jwt, token, args, upstream_port)
                print(f"repetition {rep + 1}/{args.reps}: creations with and without a policy", file=sys.stderr,
                      flush=True)
                result[Gateway.name]["policy"] = policy_cost(proxies[Gateway.name], ruled, args, env)
            runs.append(result)
    finally:
        upstream.terminate()
        if slapd:
            slapd.stop()
        if redis:
            redis.stop()
        if idp:
            idp.stop()
    saved = {"date": datetime.date.today().isoformat(), "machine": machine(), "names": names, "runs": runs,
             "direct": direct_runs, "rates": rates, "duration": args.duration, "quick": args.quick}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{stem(args.quick)}.json").write_text(json.dumps(saved, indent=1))
    write_report(saved, args)
    shutil.rmtree(work, ignore_errors=True)


def conn_counts(quick):
    """Idle connections held for the memory figures."""
    return [100] if quick else [1000, 10000]


def stem(quick):
    """Name of a run's files under bench/results/."""
    return "quick" if quick else "results"


def write_report(saved, args):
    names = saved["names"]
    text, table, _ = report(saved["runs"], names, args, saved["direct"], saved["rates"], saved["machine"],
                            saved["date"])
    (RESULTS / f"{stem(args.quick)}.md").write_text(text)
    chart(table, names, RESULTS / f"{stem(args.quick)}.png")
    print(text)


def rerender(args):
    saved = json.loads(args.report.read_text())
    args.duration, args.quick = saved["duration"], saved["quick"]
    args.conns = conn_counts(args.quick)
    write_report(saved, args)


if __name__ == "__main__":
    main()
