"""sparkmagic 0.23.0 (unmodified; no Jupyter needed) through the gateway: its
session start sequence, a statement, logs, delete; against a CSRF-protected Livy
with and without its own X-Requested-By header."""

import os

import pytest
from requests.auth import HTTPBasicAuth

import sparkmagic.utils.configuration as conf
from sparkmagic.livyclientlib.command import Command
from sparkmagic.livyclientlib.endpoint import Endpoint
from sparkmagic.livyclientlib.exceptions import HttpClientException
from sparkmagic.livyclientlib.livyreliablehttpclient import LivyReliableHttpClient
from sparkmagic.livyclientlib.livysession import LivySession

from conftest import PASSWORD


class Display:
    """What LivySession writes to a notebook; kept for assertions."""

    def __init__(self):
        self.lines = []

    def writeln(self, text):
        self.lines.append(text)

    def write(self, text):
        self.lines.append(text)

    def html(self, _):
        pass

    def display(self, _):
        pass

    def send_error(self, text):
        self.lines.append(text)


@pytest.fixture(autouse=True)
def trust_the_gateway(gateway):
    # sparkmagic has no CA option; requests honours REQUESTS_CA_BUNDLE.
    os.environ["REQUESTS_CA_BUNDLE"] = gateway.ca
    conf.override(conf.custom_headers.__name__, {})
    yield
    os.environ.pop("REQUESTS_CA_BUNDLE", None)
    conf.override(conf.custom_headers.__name__, {})


def client(gw, user="sam"):
    return LivyReliableHttpClient.from_endpoint(Endpoint(gw.url, HTTPBasicAuth(user, PASSWORD)))


def session_flow(gw):
    http = client(gw)
    display = Display()
    session = LivySession(http, {"kind": "pyspark"}, display)
    session.start()  # POST /sessions, wait for idle, run `spark`
    assert session.status == "idle"
    assert "SparkSession available as 'spark'." in display.lines
    assert Command("1+1").execute(session) == (True, "2", "text/plain")
    logs = http.get_all_session_logs(session.id)
    assert logs["from"] == 0 and logs["log"]
    session_id = session.id
    return http, session, session_id


def test_session_statement_logs_delete(gateway):
    http, session, session_id = session_flow(gateway)
    # Bob cannot reach sam's session.
    with pytest.raises(HttpClientException):
        client(gateway, "bob").get_session(session_id)
    session.delete()
    assert session.status == "dead"
    with pytest.raises(HttpClientException):
        http.get_session(session_id)


def test_with_its_own_csrf_header(csrf_gateway):
    conf.override(conf.custom_headers.__name__, {"X-Requested-By": "sparkmagic"})
    os.environ["REQUESTS_CA_BUNDLE"] = csrf_gateway.ca
    _, session, _ = session_flow(csrf_gateway)
    session.delete()


def test_without_csrf_header_the_gateway_injects_it(csrf_gateway, csrf_gateway_without_injection):
    os.environ["REQUESTS_CA_BUNDLE"] = csrf_gateway.ca
    _, session, _ = session_flow(csrf_gateway)
    session.delete()
    # Control: without injection a CSRF-protected Livy refuses the same client.
    http = client(csrf_gateway_without_injection)
    with pytest.raises(HttpClientException):
        http.post_session({"kind": "pyspark"})


def test_sparkmagic_reuses_the_cookie(gateway):
    http = client(gateway)
    http.get_sessions()
    http.get_sessions()
    with_cookie = lambda entries: any(e["session_cookie"] for e in entries)
    assert with_cookie(gateway.access("sam", until=with_cookie))


def test_sql_magic_shows_the_rows_of_its_query(gateway):
    """%%sql: sparkmagic wraps the query in pyspark code that prints JSON rows,
    and shows them as a table."""
    from sparkmagic.livyclientlib.sqlquery import SQLQuery

    _, session, _ = session_flow(gateway)
    table = SQLQuery("select 1 as a, 'x' as b").execute(session)
    assert list(table.columns) == ["a", "b"]
    assert table.values.tolist() == [[1, "x"]]
    session.delete()


def test_configure_asking_for_a_refused_setting_shows_the_gateways_message(policy_gateway):
    """%%configure sets the session's properties (sparkmagic's session_configs),
    from which the next session is started: a setting the cluster's policy
    refuses comes back as the gateway's message, naming the key and the rule."""
    os.environ["REQUESTS_CA_BUNDLE"] = policy_gateway.ca
    conf.override(
        conf.session_configs.__name__,
        {"conf": {"spark.driver.extraClassPath": "/tmp/mine.jar"}, "executorMemory": "2g"},
    )
    try:
        properties = conf.get_session_properties("python")
        session = LivySession(client(policy_gateway), properties, Display())
        with pytest.raises(HttpClientException) as refused:
            session.start()
    finally:
        conf.override(conf.session_configs.__name__, {})
    message = str(refused.value)
    assert "403" in message, message
    assert "policy_denied" in message and "spark.driver.extraClassPath" in message, message
    assert "deny_conf" in message, message

