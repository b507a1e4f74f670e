"""A real MIT KDC for the client suite, made as tests/common/kdc.rs makes one for
the Rust tests: a throwaway realm in a scratch directory (generated krb5.conf and
kdc.conf, kdb5_util, kadmin.local), krb5kdc on a free loopback port, stopped when
done. Debian's krb5-kdc, krb5-admin-server and krb5-user (tests/clients/run.sh
installs them)."""

import os
import subprocess
from pathlib import Path

from processes import free_port, stop, wait_for_port

REALM = "LIVY.TEST"


class Kdc:
    """krb5kdc for REALM on 127.0.0.1:<port> (UDP and TCP)."""

    def __init__(self, root: Path):
        self.root = root
        root.mkdir(parents=True)
        self.port = free_port()
        (root / "krb5.conf").write_text(
            f"""[libdefaults]
  default_realm = {REALM}
  dns_lookup_kdc = false
  dns_lookup_realm = false
  rdns = false
  dns_canonicalize_hostname = false
  udp_preference_limit = 1
[realms]
  {REALM} = {{
    kdc = 127.0.0.1:{self.port}
  }}
"""
        )
        (root / "kdc.conf").write_text(
            f"""[kdcdefaults]
  kdc_ports = {self.port}
  kdc_tcp_ports = {self.port}
[realms]
  {REALM} = {{
    database_name = {root}/principal
    key_stash_file = {root}/stash
    acl_file = {root}/kadm5.acl
  }}
[logging]
  kdc = FILE:{root}/kdc.log
"""
        )
        (root / "kadm5.acl").write_text("")
        self._tool("kdb5_util", "create", "-s", "-r", REALM, "-P", "master-pw")
        self.proc = subprocess.Popen(
            ["krb5kdc", "-n"], env=self.env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait_for_port(self.port, self.proc, "krb5kdc")

    def env(self) -> dict:
        """The environment a process using this realm needs (an acceptor's replay
        cache in the realm's directory)."""
        return dict(
            os.environ,
            KRB5_CONFIG=str(self.root / "krb5.conf"),
            KRB5_KDC_PROFILE=str(self.root / "kdc.conf"),
            KRB5RCACHEDIR=str(self.root),
        )

    def _tool(self, *args):
        subprocess.run(args, env=self.env(), check=True, stdout=subprocess.DEVNULL)

    def service(self, principal: str) -> Path:
        """Adds `principal` with a random key; the keytab holding it."""
        keytab = self.root / (principal.replace("/", "_") + ".keytab")
        self._tool("kadmin.local", "-r", REALM, "-q", f"addprinc -randkey {principal}")
        self._tool("kadmin.local", "-r", REALM, "-q", f"ktadd -k {keytab} {principal}")
        return keytab

    def user(self, name: str, password: str) -> Path:
        """Adds a user and logs them in (kinit); their credential cache."""
        self._tool("kadmin.local", "-r", REALM, "-q", f"addprinc -pw {password} {name}")
        ccache = self.root / f"{name}.ccache"
        subprocess.run(
            ["kinit", name],
            input=password + "\n",
            text=True,
            env=dict(self.env(), KRB5CCNAME=f"FILE:{ccache}"),
            check=True,
            stdout=subprocess.DEVNULL,
        )
        return ccache

    def stop(self):
        stop(self.proc)
