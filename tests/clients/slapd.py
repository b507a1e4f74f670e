"""A real OpenLDAP slapd for the client suite, from the same generated config and
seed as the Rust tests (tests/fixtures/ldap/): free loopback port, scratch
directory, seeded through ldapadd, stopped when done."""

import subprocess
from pathlib import Path

from processes import free_port, stop, wait_for_port

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "ldap"


class Slapd:
    """slapd on ldap://127.0.0.1:<port>, TLS from the suite's development CA."""

    def __init__(self, root: Path, certs: Path):
        self.root = root
        (root / "db").mkdir(parents=True)
        conf = (FIXTURES / "slapd.conf").read_text()
        conf = conf.replace("@DIR@", str(root)).replace("@CERTS@", str(certs))
        (root / "slapd.conf").write_text(conf)
        self.port = free_port()
        self.url = f"ldap://127.0.0.1:{self.port}"
        self.password_file = root / "ldap-bind.password"
        self.password_file.write_text("gateway-pw\n")
        self.proc = subprocess.Popen(
            ["slapd", "-f", str(root / "slapd.conf"), "-h", self.url + "/", "-d", "0"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.port, self.proc, "slapd")
        subprocess.run(
            ["ldapadd", "-x", "-H", self.url, "-D", "cn=admin,dc=example,dc=org",
             "-w", "admin-secret", "-f", str(FIXTURES / "seed.ldif")],
            check=True,
            stdout=subprocess.DEVNULL,
        )

    def auth_section(self) -> str:
        """`[auth.ldap]` for a gateway: search-then-bind, groups by filter."""
        return f"""
[auth.ldap]
urls = ["{self.url}"]
bind_dn = "cn=gateway,dc=example,dc=org"
bind_password_file = "{self.password_file}"
user_search_base = "ou=people,dc=example,dc=org"
group_search_base = "ou=groups,dc=example,dc=org"
group_filter = "(&(objectClass=groupOfNames)(member={{dn}}))"
"""

    def stop(self):
        stop(self.proc)
