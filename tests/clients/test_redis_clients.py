"""pylivy and curl across two gateway instances that share their state in Redis:
a job made through one instance is followed, read and killed through the other
with the session cookie alone, as when a balancer sends each request anywhere."""

import subprocess

import requests
from livy import LivyBatch, SessionState

from conftest import PASSWORD

JAR = "local:/opt/spark/examples/jars/spark-examples.jar"


def test_pylivy_follows_a_batch_through_the_other_instance(redis_gateways):
    one, two = redis_gateways
    first = requests.Session()
    batch = LivyBatch.create(
        one.url,
        file=JAR,
        class_name="org.apache.spark.examples.SparkPi",
        auth=("ava", PASSWORD),
        verify=one.ca,
        requests_session=first,
    )
    assert "JSESSIONID" in first.cookies
    # Through the other instance, with nothing but the cookie.
    other = requests.Session()
    other.cookies.update(first.cookies)
    followed = LivyBatch(two.url, batch.batch_id, verify=two.ca, requests_session=other)
    assert followed.wait() == SessionState.SUCCESS
    assert followed.log()
    # Livy 0.5 names no owner: the record shared through Redis keeps bob out on both.
    for gw in (one, two):
        r = requests.get(f"{gw.url}/batches/{batch.batch_id}", auth=("bob", PASSWORD), verify=gw.ca)
        assert r.status_code == 404
    followed.kill()


def test_curl_keeps_its_cookie_jar_across_instances(redis_gateways, tmp_path):
    one, two = redis_gateways
    jar = tmp_path / "jar"
    login = subprocess.run(
        ["curl", "-sS", "--cacert", one.ca, "-u", f"sam:{PASSWORD}", "-c", str(jar),
         "-o", "/dev/null", "-w", "%{http_code}", f"{one.url}/batches"],
        capture_output=True, text=True, check=True,
    )
    assert login.stdout == "200"
    for http in ("--http1.1", "--http2"):
        again = subprocess.run(
            ["curl", "-sS", http, "--cacert", two.ca, "-b", str(jar),
             "-o", "/dev/null", "-w", "%{http_code}", f"{two.url}/batches"],
            capture_output=True, text=True, check=True,
        )
        assert again.stdout == "200", http
