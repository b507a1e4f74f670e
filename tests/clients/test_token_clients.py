"""Real clients with tokens instead of passwords (issue: automation should not hold
a person's password): curl with `--oauth2-bearer` (a JWT from a real OpenID
provider, and a gateway token), pylivy with a bearer header, sparkmagic with
Basic `token:<token>` (its only choice besides passwords and Kerberos), over
HTTP/1.1 and HTTP/2. Airflow's LivyHook is in test_airflow.py (its own venv)."""

import json
import os
import subprocess

import pytest
from livy import LivyBatch, SessionState
from requests.auth import HTTPBasicAuth

import sparkmagic.utils.configuration as conf
from sparkmagic.livyclientlib.command import Command
from sparkmagic.livyclientlib.endpoint import Endpoint
from sparkmagic.livyclientlib.livyreliablehttpclient import LivyReliableHttpClient
from sparkmagic.livyclientlib.livysession import LivySession

from test_browser import Bearer
from test_sparkmagic import Display


def curl_bearer(gw, token, *args, http2=False):
    out = subprocess.run(
        ["curl", "--cacert", gw.ca, "-s", "-i", "--http2" if http2 else "--http1.1",
         "--oauth2-bearer", token, *args],
        capture_output=True,
        check=True,
    ).stdout.decode()
    head, _, body = out.partition("\r\n\r\n")
    return head, json.loads(body)


@pytest.mark.parametrize("http2", [False, True])
def test_curl_with_a_provider_jwt_and_with_a_gateway_token(token_gateway, http2):
    gw = token_gateway.gateway
    jwt = token_gateway.idp.service_token()
    head, body = curl_bearer(
        gw, jwt, "-H", "Content-Type: application/json", "-d", '{"file": "local:/x.jar"}',
        f"{gw.url}/batches", http2=http2,
    )
    assert head.split()[1] == "201", head
    assert body["proxyUser"] == "svc-airflow"
    assert "set-cookie" not in head.lower(), "a bearer request is stateless"
    own = token_gateway.issue("carl", f"curl-{http2}")
    head, body = curl_bearer(gw, own, f"{gw.url}/batches", http2=http2)
    assert head.split()[1] == "200" and body["total"] == 0
    head, body = curl_bearer(gw, "lgw_" + "A" * 43, f"{gw.url}/batches", http2=http2)
    assert head.split()[1] == "401"
    assert 'bearer error="invalid_token"' in head.lower()
    assert body["error"] == "unauthorized"


def test_pylivy_with_a_bearer_header(token_gateway):
    gw = token_gateway.gateway
    for token, user in [(token_gateway.issue("paula", "pylivy"), "paula"),
                        (token_gateway.idp.user_token("alice"), "alice")]:
        batch = LivyBatch.create(
            gw.url,
            file="local:/opt/spark/examples/jars/spark-examples.jar",
            class_name="org.apache.spark.examples.SparkPi",
            auth=Bearer(token),
            verify=gw.ca,
        )
        assert batch.wait() == SessionState.SUCCESS
        assert len(batch.log()) == 32
        batch.kill()
        assert gw.access(user, until=lambda e: len(e) >= 3)


def test_sparkmagic_with_basic_token(token_gateway):
    gw = token_gateway.gateway
    token = token_gateway.issue("sam", "notebook")
    os.environ["REQUESTS_CA_BUNDLE"] = gw.ca
    conf.override(conf.custom_headers.__name__, {})
    try:
        http = LivyReliableHttpClient.from_endpoint(Endpoint(gw.url, HTTPBasicAuth("token", token)))
        display = Display()
        session = LivySession(http, {"kind": "pyspark"}, display)
        session.start()
        assert session.status == "idle"
        assert Command("1+1").execute(session) == (True, "2", "text/plain")
        session.delete()
    finally:
        os.environ.pop("REQUESTS_CA_BUNDLE", None)
    made = lambda e: [x for x in e if x.get("action") != "token.create"]
    entries = made(gw.access("sam", until=lambda e: len(made(e)) >= 4))
    # Every request after the token's creation carries the token (requests' Basic auth sends it each time)
    # and, after the first, the session cookie it started.
    assert entries and all(e.get("auth") == "token" for e in entries), entries
    assert any(e.get("session_cookie") for e in entries), entries
