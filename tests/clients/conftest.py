"""Fixtures for the real-client suite: livy-sim and livy-gateway started as real
processes on free loopback ports, with a generated CA and an htpasswd file, and
helpers to read the gateway's JSON access log."""

import json
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from processes import free_port, stop, wait_for_port

GATEWAY = os.environ.get("LIVY_GATEWAY_BIN", "target/debug/livy-gateway")
SIM = os.environ.get("LIVY_SIM_BIN", "target/debug/livy-sim")
STAND_IN = Path(__file__).resolve().parent.parent / "fixtures" / "kerberos" / "hadoop_auth_livy.py"

# One user per client (so the access log tells which client reused its cookie),
# plus bob, who must never see anyone else's work.
USERS = ["carl", "paula", "sam", "ava", "bob"]
PASSWORD = "client-suite-pw"


@dataclass
class Gateway:
    """A running gateway: where it is, how to trust it, and its log."""

    port: int
    ca: str
    log_path: Path
    audit_path: Path
    procs: list = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"https://localhost:{self.port}/gateway/default/livy/v1"

    def access(self, user=None, until=bool):
        """Access-log entries (JSON lines on the gateway's stderr), once `until`
        holds for them: the gateway writes its access lines in batches, so a line
        may reach the file a moment after its answer reached the client."""
        for _ in range(200):
            entries = self._access(user)
            if until(entries):
                break
            time.sleep(0.05)
        return entries

    def _access(self, user):
        entries = []
        for line in self.log_path.read_text().splitlines():
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                continue
            if entry.get("target") == "livy_gateway::access" and (
                user is None or entry.get("user") == user
            ):
                entries.append(entry)
        return entries


def start_sim(sim_args):
    """livy-sim on a free port: (port, process)."""
    sim_port = free_port()
    sim = subprocess.Popen(
        [SIM, "--listen", f"127.0.0.1:{sim_port}", *sim_args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_for_port(sim_port, sim, "livy-sim")
    return sim_port, sim


def start_stack(base: Path, name: str, sim_args, livy_extra: str = "", auth_extra: str = "") -> Gateway:
    """livy-sim plus a gateway in front of it, under base/name."""
    sim_port, sim = start_sim(sim_args)
    gw = start_gateway(base, name, sim_port, livy_extra, auth_extra)
    gw.procs.append(sim)
    return gw


def start_gateway(
    base: Path,
    name: str,
    sim_port: int,
    livy_extra: str = "",
    auth_extra: str = "",
    extra: str = "",
    env=None,
) -> Gateway:
    """A gateway in front of the livy-sim on `sim_port`, under base/name (with
    `env` as its environment, if given)."""
    root = base / name
    root.mkdir()
    gw_port = free_port()
    log_path = root / "gateway.log"
    (root / "gateway.toml").write_text(
        f"""
[server]
listen = "127.0.0.1:{gw_port}"
tls_cert = "../certs/gateway.crt"
tls_key = "../certs/gateway.key"
data_dir = "data"
[auth]
htpasswd = "../users.htpasswd"
admins = ["admin"]
{auth_extra}
[livy]
upstreams = ["http://127.0.0.1:{sim_port}"]
{livy_extra}
[log]
format = "json"
level = "info"
[admin]
listen = "127.0.0.1:0"
{extra}
"""
    )
    gw = subprocess.Popen(
        [GATEWAY, "serve", "--config", str(root / "gateway.toml")],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(log_path, "w"),
    )
    wait_for_port(gw_port, gw, "livy-gateway")
    return Gateway(gw_port, str(base / "certs" / "ca.crt"), log_path, root / "data" / "audit.log", [gw])


@pytest.fixture(scope="session")
def workdir():
    base = Path(tempfile.mkdtemp(prefix="livy-clients-"))
    subprocess.run([GATEWAY, "gen-cert", "--dir", str(base / "certs")], check=True, stdout=subprocess.DEVNULL)
    lines = []
    for user in USERS + ["admin"]:
        out = subprocess.run(
            [GATEWAY, "hash-password", "--user", user, "--cost", "5"],
            input=PASSWORD + "\n",
            capture_output=True,
            text=True,
            check=True,
        )
        lines.append(out.stdout)
    (base / "users.htpasswd").write_text("".join(lines))
    yield base
    shutil.rmtree(base, ignore_errors=True)


def _stop(gw: Gateway):
    for p in gw.procs:
        stop(p)


@pytest.fixture(scope="session")
def gateway(workdir):
    """The gateway in front of a Livy 0.7 simulator (fast timings)."""
    gw = start_stack(workdir, "plain", ["--livy-version", "0.7", "--speed", "50"])
    yield gw
    _stop(gw)


@dataclass
class TokenStack:
    """A gateway taking tokens: its own ([tokens]) and the provider's JWTs."""

    gateway: Gateway
    idp: object

    def issue(self, user: str, name: str) -> str:
        """A gateway token for `user`, created with their password."""
        import requests

        answer = requests.post(
            f"https://localhost:{self.gateway.port}/gateway/default/tokens",
            json={"name": name, "ttl_days": 1},
            auth=(user, PASSWORD),
            verify=self.gateway.ca,
            timeout=10,
        )
        assert answer.status_code == 201, answer.text
        return answer.json()["token"]


@pytest.fixture(scope="session")
def token_gateway(workdir):
    """The gateway in front of a Livy 0.7 simulator, taking gateway tokens and
    the JWTs of a real OpenID provider."""
    from idp import Idp

    idp = Idp(workdir / "idp", GATEWAY)
    sim_port, sim = start_sim(["--livy-version", "0.7", "--speed", "50"])
    extra = idp.jwt_section() + "[tokens]\nenabled = true\n"
    gw = start_gateway(workdir, "tokens", sim_port, extra=extra)
    gw.procs.append(sim)
    yield TokenStack(gw, idp)
    _stop(gw)
    idp.stop()


@pytest.fixture(scope="session")
def policy_gateway(workdir):
    """A gateway with a cluster policy: a setting refused, one session per user."""
    sim_port, sim = start_sim(["--livy-version", "0.7", "--speed", "50"])
    policy = (
        '[policy]\n'
        'deny_conf = ["spark.driver.extraClassPath", "spark.executor.extraJavaOptions"]\n'
        'max_sessions_per_user = 1\n'
    )
    gw = start_gateway(workdir, "policy", sim_port, extra=policy)
    gw.procs.append(sim)
    yield gw
    _stop(gw)


@pytest.fixture(scope="session")
def seed_gateway(workdir):
    """The gateway in front of a Livy 0.5 simulator, as in the seed document."""
    gw = start_stack(workdir, "seed", ["--livy-version", "0.5", "--speed", "1000"])
    yield gw
    _stop(gw)


@pytest.fixture(scope="session")
def ldap_gateway(workdir):
    """The gateway logging users in against a real slapd (and the htpasswd file),
    only members of livy-users allowed, in front of a Livy 0.7 simulator."""
    from slapd import Slapd

    slapd = Slapd(workdir / "slapd", workdir / "certs")
    # `[auth]` keys first, then the `[auth.ldap]` table.
    extra = 'allowed_groups = ["livy-users"]\n' + slapd.auth_section()
    gw = start_stack(workdir, "ldap", ["--livy-version", "0.7", "--speed", "50"], auth_extra=extra)
    yield gw
    _stop(gw)
    slapd.stop()


@dataclass
class KerberosStack:
    """A gateway with Kerberos on both sides, and what the tests look at."""

    gateway: Gateway
    kdc: object
    ccache: Path
    livy_log: Path


@pytest.fixture(scope="session")
def kerberos_gateway(workdir):
    """Kerberos on both sides, against a real MIT KDC: the gateway takes users'
    tickets (SPNEGO, its HTTP/localhost key) beside passwords, and reaches a
    Kerberized Livy (tests/fixtures/kerberos/hadoop_auth_livy.py, Hadoop's
    AuthenticationFilter's behaviour on Debian's python3-gssapi, key
    HTTP/127.0.0.1) in front of a Livy 0.7 simulator, as livy-gateway/localhost
    acting for users through doAs. kate exists only in the realm, with a ticket in
    her credential cache."""
    from kdc import REALM, Kdc

    kdc = Kdc(workdir / "kdc")
    users_key = kdc.service("HTTP/localhost")
    livy_key = kdc.service("HTTP/127.0.0.1")
    gateway_key = kdc.service("livy-gateway/localhost")
    ccache = kdc.user("kate", PASSWORD)
    sim_port, sim = start_sim(["--livy-version", "0.7", "--speed", "50"])
    front_port = free_port()
    livy_log = workdir / "kdc" / "livy-front.log"
    front = subprocess.Popen(
        ["/usr/bin/python3", str(STAND_IN), str(front_port), f"http://127.0.0.1:{sim_port}", str(livy_log)],
        env=dict(kdc.env(), KRB5_KTNAME=str(livy_key)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_for_port(front_port, front, "the Kerberized Livy")
    users = f'[auth.kerberos]\nkeytab = "{users_key}"\nrealms = ["{REALM}"]\n'
    livy = f'[livy.kerberos]\nkeytab = "{gateway_key}"\nprincipal = "livy-gateway/localhost@{REALM}"\n'
    gw = start_gateway(workdir, "kerberos", front_port, livy, users, env=kdc.env())
    gw.procs += [front, sim]
    yield KerberosStack(gw, kdc, ccache, livy_log)
    _stop(gw)
    kdc.stop()


@pytest.fixture(scope="session")
def redis_gateways(workdir):
    """Two gateways sharing their state through a real redis-server, in front of
    one Livy 0.5 simulator (whose views name no owner), as two instances behind a
    balancer would be."""
    from redis_server import RedisServer

    redis = RedisServer(workdir / "redis")
    sim_port, sim = start_sim(["--livy-version", "0.5", "--speed", "1000"])
    state = f'[state]\nbackend = "redis"\nredis_url = "{redis.url}"\n'
    gateways = [start_gateway(workdir, f"redis-{n}", sim_port, extra=state) for n in (1, 2)]
    yield gateways
    for gw in gateways:
        _stop(gw)
    stop(sim)
    redis.stop()


@pytest.fixture(scope="session")
def csrf_gateway(workdir):
    """A CSRF-protected Livy behind a gateway that injects X-Requested-By."""
    gw = start_stack(workdir, "csrf", ["--csrf", "--speed", "50"], 'csrf_header = "X-Requested-By"')
    yield gw
    _stop(gw)


@pytest.fixture(scope="session")
def csrf_gateway_without_injection(workdir):
    """A CSRF-protected Livy behind a gateway that injects nothing (the control)."""
    gw = start_stack(workdir, "csrf-bare", ["--csrf", "--speed", "50"])
    yield gw
    _stop(gw)
