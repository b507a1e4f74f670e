"""The OpenID provider for the client suite: tests/oidc/provider.mjs (npm's
oidc-provider on Node) over HTTPS on a free loopback port, with a development
CA of its own, driven one command per line on its standard input (as
tests/common/idp.rs does for the Rust tests); stopped when done."""

import os
import subprocess
from pathlib import Path

from processes import free_port, stop

SCRIPT_DIR = Path(__file__).resolve().parent.parent / "oidc"
AUDIENCE = "livy-gateway"


class Idp:
    """A running provider: its issuer URL and CA file."""

    def __init__(self, root: Path, gateway_bin: str):
        root.mkdir(parents=True)
        subprocess.run(
            [gateway_bin, "gen-cert", "--dir", str(root), "--san", "127.0.0.1"],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        self.ca = str(root / "ca.crt")
        self.proc = subprocess.Popen(
            ["node", str(SCRIPT_DIR / "provider.mjs"), str(root / "gateway.crt"),
             str(root / "gateway.key"), str(free_port())],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env={**os.environ, "NODE_EXTRA_CA_CERTS": self.ca},
        )
        first = self._answer()
        assert first.startswith("issuer "), first
        self.issuer = first.removeprefix("issuer ")

    def _answer(self) -> str:
        for line in self.proc.stdout:
            if line.startswith("= "):
                return line[2:].rstrip("\n")
        raise RuntimeError("the provider exited")

    def ask(self, command: str) -> str:
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        answer = self._answer()
        assert not answer.startswith("error "), answer
        return answer

    def service_token(self) -> str:
        """An access token by client credentials (user svc-airflow)."""
        return self.ask("client airflow airflow-secret")

    def user_token(self, user: str) -> str:
        return self.ask(f"user {user}")

    def signed_for(self, user: str) -> str:
        """A token for `user` signed with the provider's current key (valid 10
        minutes), for users the provider has no account of."""
        return self.ask(f"sign {user}")

    def jwt_section(self) -> str:
        """The gateway's [auth.jwt] for this provider."""
        return (
            f'[auth.jwt]\nissuer = "{self.issuer}"\naudiences = ["{AUDIENCE}"]\n'
            f'user_claim = "preferred_username"\ngroups_claim = "groups"\nca_file = "{self.ca}"\n'
        )

    def stop(self):
        stop(self.proc)
