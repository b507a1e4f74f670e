"""Cross-site request forgery against the gateway, in a real browser (Debian's
Chromium, driven by Playwright) holding an administrator's cached Basic login and
session cookie: a hostile application page served through the YARN routes (its
owner controls it; the gateway sandboxes it for anyone else) and a page on
another origin both try to create a batch as another user and to run code in a
session, with a `text/plain` form and with `fetch(..., {mode: "no-cors"})`, the
requests a browser sends without asking first. Nothing reaches Livy (livy-sim's
journal of creations stays empty); the same browser's same-origin JSON request
still works."""

import json
import shutil
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from playwright.sync_api import expect, sync_playwright

from conftest import PASSWORD, SIM, start_gateway
from processes import free_port, stop, wait_for_port

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
APP = "application_1_0001"
FORGED = '{"file":"local:/evil.jar","proxyUser":"victim","x":"'


def forging_page(gateway_origin):
    """What a hostile application (or site) serves: a form and two no-cors
    fetches at the gateway, made as soon as the page loads. `gateway_origin` is
    empty for a page on the gateway's own origin (relative URLs)."""
    livy = f"{gateway_origin}/gateway/default/livy/v1"
    return f"""<!DOCTYPE html><html><head><title>Spark Jobs</title></head><body>
<h1>Spark Jobs</h1>
<form id="forge" method="POST" enctype="text/plain" action="{livy}/batches">
<input type="hidden" name='{FORGED}' value='"}}'>
</form>
<script>
const quietly = (path, body) => fetch("{livy}" + path, {{
  method: "POST", mode: "no-cors", credentials: "include",
  headers: {{"Content-Type": "text/plain"}}, body: body,
}}).catch(() => null);
Promise.all([
  quietly("/batches", '{{"file":"local:/evil2.jar","proxyUser":"victim"}}'),
  quietly("/sessions/0/statements", '{{"code":"evil()"}}'),
]).then(() => {{
  document.title = "tried";
  try {{ document.getElementById("forge").submit(); }} catch (e) {{}}
}});
</script></body></html>"""


class Forger(BaseHTTPRequestHandler):
    """Stands in for the ResourceManager's proxy of a hostile application (any
    `/proxy/...` path), and for a site of another origin (`/elsewhere`)."""

    gateway_origin = ""

    def do_GET(self):
        page = forging_page(self.gateway_origin if self.path == "/elsewhere" else "")
        body = page.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def forged(workdir):
    """A gateway whose `[yarn]` ResourceManager serves a forging page, in front of
    a livy-sim journaling every creation that reaches it."""
    forger = ThreadingHTTPServer(("127.0.0.1", free_port()), Forger)
    threading.Thread(target=forger.serve_forever, daemon=True).start()
    sim_port = free_port()
    journal = workdir / "cross-site.journal"
    sim = subprocess.Popen(
        [SIM, "--listen", f"127.0.0.1:{sim_port}", "--speed", "1000", "--journal", str(journal)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_for_port(sim_port, sim, "livy-sim")
    yarn = f'[yarn]\nresourcemanager = "http://127.0.0.1:{forger.server_port}"\nnodemanagers = []\n'
    gw = start_gateway(workdir, "cross-site", sim_port, livy_extra='csrf_header = "X-Requested-By"', extra=yarn)
    gw.procs.append(sim)
    Forger.gateway_origin = f"https://localhost:{gw.port}"
    yield gw, journal, f"http://127.0.0.1:{forger.server_port}"
    for p in gw.procs:
        stop(p)
    forger.shutdown()


def creations(journal):
    return journal.read_text().splitlines() if journal.exists() else []


def test_forged_requests_from_a_sandboxed_page_and_another_site_never_reach_livy(forged):
    gw, journal, elsewhere = forged
    origin = f"https://localhost:{gw.port}"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        context = browser.new_context(
            http_credentials={"username": "admin", "password": PASSWORD},
            ignore_https_errors=True,
        )
        page = context.new_page()
        # Logged in: the browser holds the Basic login and the session cookie.
        page.goto(f"{gw.url}/batches")
        assert "JSESSIONID" in {c["name"] for c in context.cookies()}

        # A hostile application's page, as the administrator opens it.
        page.goto(f"{origin}/gateway/default/yarn/proxy/{APP}/")
        expect(page).to_have_title("tried")

        # A page of another origin.
        page.goto(f"{elsewhere}/elsewhere")
        page.wait_for_url(f"{gw.url}/batches", timeout=10_000)
        answer = json.loads(page.locator("body").inner_text())
        assert answer["error"] == "cross_origin", answer

        refused = gw.access(until=lambda es: sum(e.get("status") == 403 for e in es) >= 3)
        forged_posts = [e for e in refused if e.get("status") == 403]
        assert len(forged_posts) >= 3, refused
        assert creations(journal) == [], "a forged creation reached Livy"

        # The gateway's own pages still act, with JSON, as the administrator.
        page.goto(f"{gw.url}/batches")
        status = page.evaluate(
            """url => fetch(url, {method: "POST", headers: {"Content-Type": "application/json"},
                                  body: JSON.stringify({file: "local:/own.jar"})}).then(r => r.status)""",
            f"{gw.url}/batches",
        )
        assert status == 201
        for _ in range(100):
            if creations(journal):
                break
            time.sleep(0.05)
        assert [line.split(" ")[2] for line in creations(journal)] == ["admin"]
        browser.close()
