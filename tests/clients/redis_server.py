"""A real redis-server for the client suite: free loopback port, scratch
directory, an append-only file, stopped when done (as tests/common/redis.rs
does for the Rust tests)."""

import subprocess
import time
from pathlib import Path

from processes import free_port, stop


class RedisServer:
    """redis-server on redis://127.0.0.1:<port>/0."""

    def __init__(self, root: Path):
        root.mkdir(parents=True)
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        conf = root / "redis.conf"
        conf.write_text(
            f"bind 127.0.0.1\nport {self.port}\ndir {root}\nappendonly yes\n"
            'save ""\ndaemonize no\nlogfile ""\n'
        )
        self.proc = subprocess.Popen(
            ["redis-server", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        for _ in range(400):
            ping = subprocess.run(
                ["redis-cli", "-p", str(self.port), "PING"], capture_output=True, text=True
            )
            if "PONG" in ping.stdout:
                return
            time.sleep(0.025)
        raise RuntimeError("redis-server did not answer")

    def stop(self):
        stop(self.proc)
