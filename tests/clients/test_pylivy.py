"""pylivy (`livy` 0.8.0, unmodified) through the gateway."""

import pytest
import requests
from livy import LivyBatch, LivySession, SessionKind, SessionState
from livy.client import LivyClient

from conftest import PASSWORD

AUTH = ("paula", PASSWORD)


def batch_flow(gw, session=None, auth=AUTH):
    """SparkPi as a batch, waited for, its log paged, killed; its id."""
    batch = LivyBatch.create(
        gw.url,
        file="local:/opt/spark/examples/jars/spark-examples.jar",
        class_name="org.apache.spark.examples.SparkPi",
        auth=auth,
        verify=gw.ca,
        requests_session=session,
    )
    assert batch.wait() == SessionState.SUCCESS
    lines = batch.log()
    assert len(lines) == 32 and "SparkPi" not in lines[0]
    assert batch.log(from_=0, size=5) == lines[:5]
    batch_id = batch.batch_id
    batch.kill()
    return batch_id


def test_batch_lifecycle_without_a_shared_session(gateway):
    batch_flow(gateway)


def test_batch_lifecycle_with_a_shared_session(gateway):
    with requests.Session() as session:
        batch_flow(gateway, session)
        assert "JSESSIONID" in session.cookies.get_dict()


def test_listing_and_missing_batches(gateway):
    client = LivyClient(gateway.url, auth=AUTH, verify=gateway.ca)
    batch = client.create_batch("local:/x.jar", class_name="Main")
    assert batch.batch_id in [b.batch_id for b in client.list_batches()]
    assert client.get_batch(987654) is None
    # Bob: sees none of it, and paula's batch is "missing" for him.
    bob = LivyClient(gateway.url, auth=("bob", PASSWORD), verify=gateway.ca)
    assert batch.batch_id not in [b.batch_id for b in bob.list_batches()]
    assert bob.get_batch(batch.batch_id) is None
    client.delete_batch(batch.batch_id)
    client.close()
    bob.close()


def test_interactive_session(gateway):
    with LivySession.create(gateway.url, auth=AUTH, verify=gateway.ca, kind=SessionKind.PYSPARK) as session:
        output = session.run("1+1")
        assert output.text == "2"
        bob = LivyClient(gateway.url, auth=("bob", PASSWORD), verify=gateway.ca)
        assert bob.get_session(session.session_id) is None
        bob.close()


def test_pylivy_reuses_the_cookie(gateway):
    entries = gateway.access("paula")
    assert entries
    assert any(e["session_cookie"] for e in entries), "requests.Session keeps JSESSIONID"


def test_pylivy_hits_the_session_quota_and_gets_the_gateways_answer(policy_gateway):
    gw = policy_gateway
    auth = ("carl", PASSWORD)
    with LivySession.create(gw.url, auth=auth, verify=gw.ca, kind=SessionKind.PYSPARK):
        with pytest.raises(requests.HTTPError) as refused:
            LivySession.create(gw.url, auth=auth, verify=gw.ca, kind=SessionKind.PYSPARK)
        answer = refused.value.response
        assert answer.status_code == 429
        body = answer.json()
        assert body["error"] == "quota_exceeded"
        assert body["quota"] == "max_sessions_per_user"
        assert (body["count"], body["limit"]) == (1, 1)
    # The first one closed (deleted through the gateway): the place is free again.
    with LivySession.create(gw.url, auth=auth, verify=gw.ca, kind=SessionKind.PYSPARK) as session:
        assert session.run("1+1").text == "2"

