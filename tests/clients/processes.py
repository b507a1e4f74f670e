"""What every server the client suite starts needs: a free loopback port, a
bounded wait until the process listens on it, and a stop that does not hang.
(Imports nothing from pytest, so the benchmark can use the servers too.)"""

import itertools
import os
import socket
import subprocess
import time

FIRST_PORT = 10_000


def _ephemeral_start() -> int:
    """Where the kernel's ephemeral ports start (32768 when it does not say)."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32_768


_SPAN = max(_ephemeral_start(), FIRST_PORT + 1_000) - FIRST_PORT
# Each process starts at its own place, so suites run one after another do not
# walk the same ports.
_next = itertools.count(os.getpid() * 7_919 % _SPAN)


def free_port() -> int:
    """A loopback port nothing listens on, for a server told to bind it: below
    the kernel's ephemeral range (which servers binding port 0 and outgoing
    connections draw from) and never twice in a process, so no other server can
    take it between its choice and its use (as tests/common/mod.rs does)."""
    for _ in range(_SPAN):
        port = FIRST_PORT + next(_next) % _SPAN
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free loopback port below the ephemeral range")


def wait_for_port(port: int, proc: subprocess.Popen, what: str) -> None:
    """Returns once `proc` accepts connections on `port`; raises if it exits or
    has not listened after ten seconds."""
    for _ in range(400):
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited early with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.025)
    raise RuntimeError(f"{what} did not listen on {port}")


def stop(proc: subprocess.Popen) -> None:
    """Terminates `proc`, killing it if it has not exited after ten seconds."""
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
