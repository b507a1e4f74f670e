"""Airflow's LivyHook (apache-airflow-providers-apache-livy, unmodified) through
the gateway: post a batch, poll its state, page its logs, delete it."""

import json
import os
import time

import pytest
from airflow.providers.apache.livy.hooks.livy import BatchState, LivyHook

from conftest import PASSWORD


def hook(gw, user, conn_id):
    os.environ["REQUESTS_CA_BUNDLE"] = gw.ca
    os.environ[f"AIRFLOW_CONN_{conn_id.upper()}"] = json.dumps(
        {"conn_type": "livy", "host": gw.url, "login": user, "password": PASSWORD}
    )
    return LivyHook(livy_conn_id=conn_id)


def test_batch_post_poll_logs_delete(gateway):
    h = hook(gateway, "ava", "livy_gateway")
    batch_id = h.post_batch(file="local:/x.jar", class_name="org.apache.spark.examples.SparkPi")
    state = None
    for _ in range(200):
        state = h.get_batch_state(batch_id)
        if state in LivyHook.TERMINAL_STATES:
            break
        time.sleep(0.05)
    assert state == BatchState.SUCCESS
    first = h.get_batch_logs(batch_id, 0, 10)
    second = h.get_batch_logs(batch_id, 10, 10)
    assert len(first["log"]) == 10 and len(second["log"]) == 10
    assert first["log"] != second["log"] and first["total"] == 32

    bob = hook(gateway, "bob", "livy_bob")
    with pytest.raises(Exception):
        bob.get_batch_state(batch_id)

    assert h.delete_batch(batch_id) == {"msg": "deleted"}


def test_a_gateway_token_as_the_connection_password(token_gateway):
    """The connection's login is `token`, its password a gateway token: no
    person's password in Airflow's connection store."""
    gw = token_gateway.gateway
    secret = token_gateway.issue("ava", "airflow-prod")
    os.environ["REQUESTS_CA_BUNDLE"] = gw.ca
    os.environ["AIRFLOW_CONN_LIVY_TOKEN"] = json.dumps(
        {"conn_type": "livy", "host": gw.url, "login": "token", "password": secret}
    )
    h = LivyHook(livy_conn_id="livy_token")
    batch_id = h.post_batch(file="local:/x.jar", class_name="org.apache.spark.examples.SparkPi")
    for _ in range(200):
        if h.get_batch_state(batch_id) in LivyHook.TERMINAL_STATES:
            break
        time.sleep(0.05)
    assert h.get_batch_state(batch_id) == BatchState.SUCCESS
    assert h.delete_batch(batch_id) == {"msg": "deleted"}
    used = lambda e: [x for x in e if x.get("action") != "token.create"]
    entries = used(gw.access("ava", until=lambda e: len(used(e)) >= 3))
    assert entries and all(e.get("auth") == "token" for e in entries), entries


def test_airflow_never_reuses_the_cookie(gateway):
    entries = gateway.access("ava")
    assert entries and not any(e["session_cookie"] for e in entries)
