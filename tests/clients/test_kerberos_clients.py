"""Kerberos logins with real clients, unmodified: sparkmagic 0.23.0 with
`"auth": "Kerberos"` (its requests-kerberos auth, mutual authentication
required) and pylivy with requests-kerberos, through a gateway with
`[auth.kerberos]` to a Kerberized Livy (`[livy.kerberos]`), against a real MIT
KDC (tests/clients/kdc.py). The user, kate, exists only in the realm: no password
of hers is known to the gateway."""

import json
import os

import pytest
from requests_kerberos import REQUIRED, HTTPKerberosAuth

import sparkmagic.utils.configuration as conf
from sparkmagic.auth.kerberos import Kerberos
from sparkmagic.livyclientlib.command import Command
from sparkmagic.livyclientlib.endpoint import Endpoint
from sparkmagic.livyclientlib.exceptions import HttpClientException
from sparkmagic.livyclientlib.livyreliablehttpclient import LivyReliableHttpClient
from sparkmagic.livyclientlib.livysession import LivySession

from test_pylivy import batch_flow
from test_sparkmagic import Display


@pytest.fixture
def kate(kerberos_gateway):
    """This process as kate: her credential cache and the realm's krb5.conf, the
    gateway's CA trusted (sparkmagic has no CA option)."""
    stack = kerberos_gateway
    saved = dict(os.environ)
    os.environ.update(
        KRB5_CONFIG=stack.kdc.env()["KRB5_CONFIG"],
        KRB5CCNAME=f"FILE:{stack.ccache}",
        REQUESTS_CA_BUNDLE=stack.gateway.ca,
    )
    conf.override(conf.custom_headers.__name__, {})
    yield stack.gateway
    os.environ.clear()
    os.environ.update(saved)


def livy_saw(stack, method, path_prefix):
    """What the Kerberized Livy saw of such requests (who authenticated to it)."""
    entries = [json.loads(line) for line in stack.livy_log.read_text().splitlines()]
    return [e for e in entries if e["method"] == method and e["path"].startswith(path_prefix)]


def test_sparkmagic_session_with_a_kerberos_ticket(kate, kerberos_gateway):
    gw = kate
    http = LivyReliableHttpClient.from_endpoint(Endpoint(gw.url, Kerberos()))
    display = Display()
    session = LivySession(http, {"kind": "pyspark"}, display)
    session.start()
    assert session.status == "idle"
    assert Command("1+1").execute(session) == (True, "2", "text/plain")
    assert http.get_all_session_logs(session.id)["log"]
    # Livy ran it for kate (doAs), and the views say so.
    assert http.get_session(session.id)["proxyUser"] == "kate"
    session.delete()
    assert session.status == "dead"
    # Logged in by ticket; requests-kerberos checked the gateway's
    # mutual-authentication token (REQUIRED) on every answer it read.
    entries = gw.access("kate", until=lambda e: any(x.get("auth") == "negotiate" for x in e))
    assert any(e.get("auth") == "negotiate" for e in entries), entries
    # The Kerberized Livy saw the gateway's principal, acting for kate.
    created = livy_saw(kerberos_gateway, "POST", "/sessions?")
    assert created and all(e["user"] == "livy-gateway" and e["status"] == 201 for e in created)
    assert all("doAs=kate" in e["path"] for e in created)


def test_pylivy_batch_with_a_kerberos_ticket(kate, kerberos_gateway):
    batch_flow(kate, auth=HTTPKerberosAuth(mutual_authentication=REQUIRED))
    created = livy_saw(kerberos_gateway, "POST", "/batches?")
    assert created and all(e["user"] == "livy-gateway" and "doAs=kate" in e["path"] for e in created)


def test_without_a_ticket_the_answer_is_a_clear_401(kate, tmp_path):
    gw = kate
    os.environ["KRB5CCNAME"] = f"FILE:{tmp_path / 'empty.ccache'}"
    http = LivyReliableHttpClient.from_endpoint(Endpoint(gw.url, Kerberos()))
    with pytest.raises(HttpClientException) as refused:
        http.get_sessions()
    assert "401" in str(refused.value)
