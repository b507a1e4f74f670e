"""A real browser (Debian's Chromium, driven by Playwright) through the gateway's
YARN routes, as a platform team's administrator and a data engineer use them: the
Spark UI link from Livy's answer, opened over TLS with a Basic login the browser
answers itself. In a secured cluster (livy-sim `--secure-yarn`, the
ResourceManager's proxy warning anyone but an application's owner) the
administrator is warned once, clicks on from the sandboxed warning page and
browses the application; the owner is never warned. This is what the cookie and
sandbox rules (docs/operations.md, "The YARN web UIs") are for, checked where
they are enforced: in a browser."""

import shutil
import subprocess
import time

import pytest
import requests
from playwright.sync_api import expect, sync_playwright

from conftest import PASSWORD, SIM, start_gateway
from processes import free_port, stop, wait_for_port

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
WARNING = "WARNING: The following page may not be safe!"


@pytest.fixture(scope="module")
def yarn_gateway(workdir):
    """A gateway with `[yarn]`, in front of a livy-sim that is also a secured
    cluster's ResourceManager proxy and its NodeManager."""
    port = free_port()
    origin = f"http://127.0.0.1:{port}"
    sim = subprocess.Popen(
        [SIM, "--listen", f"127.0.0.1:{port}", "--livy-version", "0.7", "--speed", "1000",
         "--serve-yarn", "--secure-yarn", "--resourcemanager", origin,
         "--nodemanager", f"127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_for_port(port, sim, "livy-sim")
    yarn = f'[yarn]\nresourcemanager = "{origin}"\nnodemanagers = ["127.0.0.1:{port}"]\n'
    gw = start_gateway(workdir, "browser", port, extra=yarn)
    gw.procs.append(sim)
    yield gw
    for p in gw.procs:
        stop(p)


def spark_ui_link(gw, user, auth=None):
    """A new batch of `user`'s (with their password, or `auth`), once running: its
    Spark UI link (a gateway URL)."""
    auth = auth or (user, PASSWORD)
    created = requests.post(f"{gw.url}/batches", json={"file": "local:/x.jar"}, auth=auth, verify=gw.ca)
    assert created.status_code == 201, created.text
    for _ in range(200):
        view = requests.get(f"{gw.url}/batches/{created.json()['id']}", auth=auth, verify=gw.ca).json()
        link = (view.get("appInfo") or {}).get("sparkUiUrl")
        if link:
            return link
        time.sleep(0.05)
    raise AssertionError(f"no Spark UI link in {view}")


class Bearer(requests.auth.AuthBase):
    """`Authorization: Bearer <token>` on every request."""

    def __init__(self, token):
        self.token = token

    def __call__(self, request):
        request.headers["Authorization"] = f"Bearer {self.token}"
        return request


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as playwright:
        # Chromium's own process sandbox needs user namespaces a CI machine's root
        # may not have (the pages' sandbox, the gateway's CSP, is another matter),
        # and a container's /dev/shm can be too small for it.
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        yield browser
        browser.close()


def login(browser, user):
    """A browser context that answers the gateway's Basic challenge as `user`. The
    gateway's certificate is from the suite's own CA, which Chromium's store does
    not hold; the connection is TLS all the same."""
    return browser.new_context(
        http_credentials={"username": user, "password": PASSWORD},
        ignore_https_errors=True,
    )


def test_the_owner_browses_the_spark_ui_without_a_warning(yarn_gateway, browser):
    link = spark_ui_link(yarn_gateway, "sam")
    context = login(browser, "sam")
    page = context.new_page()
    page.goto(link)
    expect(page.locator("h1")).to_contain_text("Spark Jobs")
    assert WARNING not in page.content()
    # Its stylesheet came through the gateway too (the stand-in's is one rule).
    assert page.evaluate("getComputedStyle(document.body).fontFamily") == "sans-serif"
    # The page's links lead through the gateway.
    page.get_by_role("link", name="Jobs", exact=True).click()
    page.wait_for_url("**/gateway/default/yarn/proxy/**/jobs/")
    expect(page.locator("#page")).to_have_text("/jobs/")
    context.close()


def test_an_administrator_passes_the_warning_once_and_browses_on(yarn_gateway, browser):
    link = spark_ui_link(yarn_gateway, "ava")
    context = login(browser, "admin")
    page = context.new_page()
    page.goto(link)
    expect(page.locator("h1")).to_have_text(WARNING)
    # The warning's own link, clicked in the sandboxed page, carries the cookie
    # YARN set and goes on to the application.
    page.get_by_role("link", name="here", exact=True).click()
    page.wait_for_url("**proxyapproved=true")
    expect(page.locator("h1")).to_contain_text("Spark Jobs")
    assert page.url.startswith(link.split("/gateway/")[0] + "/gateway/default/yarn/proxy/")
    # On through the application's pages, with no warning again.
    page.get_by_role("link", name="Jobs", exact=True).click()
    page.wait_for_url("**/jobs/")
    expect(page.locator("#page")).to_have_text("/jobs/")
    assert WARNING not in page.content()
    cookies = {c["name"]: c for c in context.cookies()}
    checked = [c for name, c in cookies.items() if name.startswith("checked_application_")]
    assert len(checked) == 1 and checked[0]["value"] == "true", cookies
    assert checked[0]["secure"] and checked[0]["httpOnly"]
    # YARN's own login cookie never reached the browser.
    assert "hadoop.auth" not in cookies
    context.close()
