"""Browser sign-in (`[auth.oidc]`) in a real browser (Debian's Chromium, driven by
Playwright) against a real OpenID provider (npm's oidc-provider, tests/oidc, with
its own login form): the Spark UI link from a batch's `appInfo`, opened with no
session, leads to the provider's login page and, once signed in, to the page
through the gateway; a second tab rides the session; a page's `fetch()` without
credentials gets 401, not a redirect; logout ends the session (the next
navigation signs in again); a user outside `allowed_groups` sees 403."""

import subprocess

import pytest
from playwright.sync_api import expect

from conftest import GATEWAY, SIM, start_gateway
from idp import Idp
from processes import free_port, stop, wait_for_port
from test_browser import Bearer, browser, spark_ui_link  # noqa: F401 (a fixture)


@pytest.fixture(scope="module")
def stack(workdir):
    """A gateway signing browsers in at a provider (and taking its JWTs, to make
    alice's batch), with `[yarn]` in front of livy-sim's ResourceManager proxy."""
    idp = Idp(workdir / "idp-browser", GATEWAY)
    port = free_port()
    origin = f"http://127.0.0.1:{port}"
    sim = subprocess.Popen(
        [SIM, "--listen", f"127.0.0.1:{port}", "--livy-version", "0.7", "--speed", "1000",
         "--serve-yarn", "--resourcemanager", origin, "--nodemanager", f"127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_for_port(port, sim, "livy-sim")
    secret = workdir / "oidc-client.secret"
    secret.write_text("browser-client-secret\n")
    extra = (
        f'[yarn]\nresourcemanager = "{origin}"\nnodemanagers = ["127.0.0.1:{port}"]\n'
        + idp.jwt_section()
        + f'[auth.oidc]\nissuer = "{idp.issuer}"\nclient_id = "livy-gateway"\n'
        f'client_secret_file = "{secret}"\nscopes = ["openid", "profile"]\n'
        f'user_claim = "preferred_username"\ngroups_claim = "groups"\nca_file = "{idp.ca}"\n'
    )
    gw = start_gateway(workdir, "oidc-browser", port, auth_extra='allowed_groups = ["livy-users"]', extra=extra)
    base = f"https://localhost:{gw.port}/gateway/default"
    idp.ask(f"register livy-gateway browser-client-secret {base}/oidc/callback {base}/oidc/signed-out")
    gw.procs.append(sim)
    yield gw, idp
    for p in gw.procs:
        stop(p)
    idp.stop()


def sign_in_at_the_provider(page, user):
    """Fills in the provider's own login form, then its consent form."""
    page.wait_for_selector("input[name=login]")
    page.fill("input[name=login]", user)
    page.fill("input[name=password]", "any password")
    page.click("button[type=submit]")
    # Consent, the first time this user signs in to the gateway.
    if "/interaction/" in page.url:
        page.click("button[type=submit]")


def test_a_spark_ui_link_signs_in_and_the_session_serves_the_next_tab(stack, browser):
    gw, idp = stack
    link = spark_ui_link(gw, "alice", auth=Bearer(idp.user_token("alice")))
    context = browser.new_context(ignore_https_errors=True)
    page = context.new_page()
    page.goto(link)
    assert page.url.startswith(idp.issuer), page.url
    sign_in_at_the_provider(page, "alice")
    page.wait_for_url(link + "**")
    expect(page.locator("h1")).to_contain_text("Spark Jobs")
    # A second tab rides the session: no provider on the way.
    second = context.new_page()
    second.goto(link)
    expect(second.locator("h1")).to_contain_text("Spark Jobs")
    # A page's script without credentials gets 401 (JSON), never a redirect.
    status = page.evaluate(
        "fetch('/gateway/default/livy/v1/batches', {credentials: 'omit'}).then(r => r.status)"
    )
    assert status == 401
    # Logout: here and at the provider; the next navigation signs in again.
    page.goto(f"https://localhost:{gw.port}/gateway/default/logout")
    if page.url.startswith(idp.issuer):
        page.click("button[name=logout]")
    page.wait_for_url("**/gateway/default/oidc/signed-out")
    third = context.new_page()
    third.goto(link)
    assert third.url.startswith(idp.issuer), third.url
    entries = gw.access("alice", until=lambda e: any(x.get("auth") == "oidc" for x in e))
    assert any(e.get("auth") == "oidc" for e in entries)
    context.close()


def test_a_user_outside_the_allowed_groups_sees_403(stack, browser):
    gw, idp = stack
    context = browser.new_context(ignore_https_errors=True)
    page = context.new_page()
    page.goto(f"https://localhost:{gw.port}/gateway/default/oidc/start")
    sign_in_at_the_provider(page, "eve")
    page.wait_for_url("**/gateway/default/oidc/callback**")
    expect(page.locator("h1")).to_have_text("Not allowed")
    assert not [c for c in context.cookies() if c["name"] == "JSESSIONID"]
    context.close()
