"""Python's HTTP/2 stack (httpx over h2) reads the answers the gateway sends before
a request body is read: 401 to an unauthenticated upload, 413 to an oversized
create body, each with its JSON body and headers, never a stream reset."""

import httpx

from conftest import PASSWORD


def test_early_answers_reach_an_http2_client(gateway):
    with httpx.Client(http2=True, verify=gateway.ca, timeout=20) as client:
        for size in (12, 64 * 1024):
            for _ in range(10):
                r = client.post(
                    f"{gateway.url}/batches",
                    content=b"a" * size,
                    headers={"content-type": "application/json"},
                )
                assert r.http_version == "HTTP/2"
                assert r.status_code == 401
                assert r.json()["error"] == "unauthorized"
                assert r.headers["www-authenticate"].startswith("BASIC realm=")
        for _ in range(5):
            r = client.post(
                f"{gateway.url}/batches",
                content=b"a" * (2 * 1024 * 1024),
                headers={"content-type": "application/json"},
                auth=("bob", PASSWORD),
            )
            assert r.status_code == 413
            assert r.json()["error"] == "payload_too_large"
        # The connection is still good for the next, ordinary request.
        r = client.get(f"{gateway.url}/batches", auth=("bob", PASSWORD))
        assert r.status_code == 200
