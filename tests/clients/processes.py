"""What every server the client suite starts needs: a free loopback port, a
bounded wait until the process listens on it, and a stop that does not hang.
(Imports nothing from pytest, so the benchmark can use the servers too.)"""

import socket
import subprocess
import time


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
