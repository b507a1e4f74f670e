"""pylivy and sparkmagic through a gateway whose users live in an LDAP directory
(a real slapd), as data engineers on a Knox-style cluster would log in."""

import os

import requests
from livy import LivyBatch, LivySession, SessionKind, SessionState


def test_pylivy_batch_and_session_as_a_directory_user(ldap_gateway):
    gw = ldap_gateway
    auth = ("carol", "carol-pw")
    batch = LivyBatch.create(
        gw.url,
        file="local:/opt/spark/examples/jars/spark-examples.jar",
        class_name="org.apache.spark.examples.SparkPi",
        auth=auth,
        verify=gw.ca,
    )
    assert batch.wait() == SessionState.SUCCESS
    batch.kill()
    with LivySession.create(gw.url, kind=SessionKind.PYSPARK, auth=auth, verify=gw.ca) as session:
        session.wait()
        session.run("1+1")
    # The access log names how the directory user was identified.
    created = lambda entries: any(e["status"] == 201 for e in entries)
    assert created(gw.access("carol", until=created))


def test_sparkmagic_session_as_a_directory_user(ldap_gateway):
    from requests.auth import HTTPBasicAuth
    from sparkmagic.livyclientlib.command import Command
    from sparkmagic.livyclientlib.endpoint import Endpoint
    from sparkmagic.livyclientlib.livyreliablehttpclient import LivyReliableHttpClient
    from sparkmagic.livyclientlib.livysession import LivySession as MagicSession

    from test_sparkmagic import Display

    os.environ["REQUESTS_CA_BUNDLE"] = ldap_gateway.ca
    try:
        endpoint = Endpoint(ldap_gateway.url, HTTPBasicAuth("alice", "alice-pw"))
        http = LivyReliableHttpClient.from_endpoint(endpoint)
        session = MagicSession(http, {"kind": "pyspark"}, Display())
        session.start()  # POST /sessions, wait for idle, run `spark`
        assert Command("1+1").execute(session) == (True, "2", "text/plain")
        session.delete()
    finally:
        os.environ.pop("REQUESTS_CA_BUNDLE", None)


def test_a_directory_user_outside_the_allowed_groups_is_refused(ldap_gateway):
    r = requests.get(f"{ldap_gateway.url}/batches", auth=("dave", "dave-pw"), verify=ldap_gateway.ca)
    assert r.status_code == 403
    assert r.json()["error"] == "forbidden"
