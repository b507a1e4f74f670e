"""The seed document's curl commands, verbatim but for host, credentials and
-k → --cacert, through the gateway in front of a Livy 0.5 simulator."""

import json
import subprocess

from conftest import PASSWORD

SUBMIT = '{ "file":"local:/usr/iop/current/spark2-client/jars/spark-examples.jar", "className":"org.apache.spark.examples.SparkPi" }'


def curl(gw, user, *args):
    out = subprocess.run(
        ["curl", "--cacert", gw.ca, "-s", "-i", "-u", f"{user}:{PASSWORD}", *args],
        capture_output=True,
        check=True,
    ).stdout.decode()
    head, _, body = out.partition("\r\n\r\n")
    status = int(head.split()[1])
    headers = {}
    for line in head.split("\r\n")[1:]:
        name, _, value = line.partition(":")
        headers.setdefault(name.strip().lower(), []).append(value.strip())
    return status, headers, body


def test_every_seed_request(seed_gateway):
    gw, base = seed_gateway, seed_gateway.url
    # Submit a Spark job.
    status, headers, body = curl(gw, "carl", "-H", "Content-Type: application/json", "-d", SUBMIT, f"{base}/batches")
    assert status == 201
    cookie = headers["set-cookie"][0]
    assert cookie.startswith("JSESSIONID=")
    for attribute in ["Path=/gateway/default", "Secure", "HttpOnly", "SameSite=Strict"]:
        assert attribute in cookie
    view = json.loads(body)
    batch = view["id"]
    assert set(view) == {"id", "state", "appId", "appInfo", "log"}
    assert headers["location"] == [f"/gateway/default/livy/v1/batches/{batch}"]

    # List all jobs.
    status, _, body = curl(gw, "carl", f"{base}/batches/")
    listing = json.loads(body)
    assert status == 200 and listing["from"] == 0
    assert [b["id"] for b in listing["sessions"]] == [batch]
    assert listing["total"] == 1

    # Get job information, state, log.
    status, _, body = curl(gw, "carl", f"{base}/batches/{batch}")
    assert status == 200 and json.loads(body)["id"] == batch
    status, _, body = curl(gw, "carl", f"{base}/batches/{batch}/state")
    assert status == 200 and json.loads(body) == {"id": batch, "state": "success"}
    status, _, body = curl(gw, "carl", f"{base}/batches/{batch}/log")
    log = json.loads(body)
    assert status == 200 and log["id"] == batch and log["total"] == len(log["log"]) == 32

    # A second user sees nothing of it.
    status, _, body = curl(gw, "bob", f"{base}/batches/")
    assert json.loads(body)["total"] == 0
    status, _, body = curl(gw, "bob", "-X", "DELETE", f"{base}/batches/{batch}")
    assert status == 404 and json.loads(body) == {"msg": f"Session '{batch}' not found."}

    # Kill batch job.
    status, _, body = curl(gw, "carl", "-X", "DELETE", f"{base}/batches/{batch}")
    assert status == 200 and json.loads(body) == {"msg": "deleted"}


def test_curl_never_reuses_the_cookie(seed_gateway):
    curl(seed_gateway, "carl", f"{seed_gateway.url}/batches/")
    entries = seed_gateway.access("carl")
    assert entries and not any(e["session_cookie"] for e in entries)
