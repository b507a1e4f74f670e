"""A real browser (Chromium, driven by Playwright) on the pages users open after a
batch has ended and on Livy's own UI, through the gateway: a finished batch's
Spark UI link from Livy's answer followed (YARN's proxy sends it to the history
server, which the gateway serves under /sparkhistory/) to its pages, by its owner
and by another user; the history server's application list, whose script loads
the narrowed list; and Livy's UI, whose scripts load the narrowed listings and
whose pages run only Livy's own scripts, so a session name carrying markup runs
nothing in an administrator's browser."""

import subprocess
import time

import pytest
import requests
from playwright.sync_api import expect

from conftest import PASSWORD, SIM, start_gateway
from processes import free_port, stop, wait_for_port
from test_browser import browser, login  # noqa: F401 (the fixture is used by name)

HISTORY = "/gateway/default/sparkhistory"


@pytest.fixture(scope="module")
def history_gateway(workdir):
    """A gateway with `[yarn]` naming a history server, in front of a livy-sim that
    is also the ResourceManager's proxy, its NodeManager and (on a second port)
    the history server."""
    port, history_port = free_port(), free_port()
    origin = f"http://127.0.0.1:{port}"
    sim = subprocess.Popen(
        [SIM, "--listen", f"127.0.0.1:{port}", "--livy-version", "0.7", "--speed", "1000",
         "--serve-yarn", "--resourcemanager", origin, "--nodemanager", f"127.0.0.1:{port}",
         "--history-listen", f"127.0.0.1:{history_port}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_for_port(port, sim, "livy-sim")
    wait_for_port(history_port, sim, "livy-sim's history server")
    yarn = (
        f'[yarn]\nresourcemanager = "{origin}"\nnodemanagers = ["127.0.0.1:{port}"]\n'
        f'historyserver = "http://127.0.0.1:{history_port}"\n'
    )
    gw = start_gateway(workdir, "history-browser", port, extra=yarn)
    gw.procs.append(sim)
    yield gw
    for p in gw.procs:
        stop(p)


def finished_batch(gw, user, name):
    """A new batch of `user`'s, once finished: its view."""
    auth = (user, PASSWORD)
    created = requests.post(
        f"{gw.url}/batches", json={"file": "local:/x.jar", "name": name}, auth=auth, verify=gw.ca
    )
    assert created.status_code == 201, created.text
    for _ in range(200):
        view = requests.get(f"{gw.url}/batches/{created.json()['id']}", auth=auth, verify=gw.ca).json()
        if view.get("state") == "success" and (view.get("appInfo") or {}).get("sparkUiUrl"):
            return view
        time.sleep(0.05)
    raise AssertionError(f"the batch did not finish: {view}")


def origin_of(gw):
    return gw.url.split("/gateway/")[0]


def test_the_owner_follows_a_finished_batchs_link_to_its_history(history_gateway, browser):
    view = finished_batch(history_gateway, "sam", "nightly")
    app = view["appId"]
    context = login(browser, "sam")
    page = context.new_page()
    page.goto(view["appInfo"]["sparkUiUrl"])
    # YARN's redirection and the history server's own, both through the gateway.
    page.wait_for_url(f"**{HISTORY}/history/{app}/1/jobs/")
    expect(page.locator("h1")).to_contain_text(f"Spark jobs ({app})")
    assert page.evaluate("uiRoot") == HISTORY
    page.get_by_role("link", name="Executors", exact=True).click()
    page.wait_for_url(f"**{HISTORY}/history/{app}/1/executors/")
    # The application list: its script loads the list, narrowed to sam's.
    finished_batch(history_gateway, "ava", "not-sams")
    page.goto(f"{origin_of(history_gateway)}{HISTORY}/")
    items = page.locator("#applications li")
    expect(items.first).to_contain_text(app)
    texts = items.all_inner_texts()
    assert texts and all("(sam)" in t for t in texts), texts
    context.close()


def test_another_user_finds_no_such_application(history_gateway, browser):
    view = finished_batch(history_gateway, "sam", "private")
    context = login(browser, "ava")
    page = context.new_page()
    page.goto(view["appInfo"]["sparkUiUrl"])
    # The YARN link itself is another's: a page saying so, as for a missing one.
    expect(page.locator("h1")).to_contain_text("404")
    page.goto(f"{origin_of(history_gateway)}{HISTORY}/history/{view['appId']}/1/jobs/")
    expect(page.locator("h1")).to_contain_text("404")
    assert "Spark jobs" not in page.content()
    context.close()


def test_livy_ui_lists_only_the_callers_sessions(history_gateway, browser):
    gw = history_gateway
    for user in ["sam", "ava"]:
        created = requests.post(
            f"{gw.url}/sessions", json={"kind": "pyspark", "name": f"{user}-notebook"},
            auth=(user, PASSWORD), verify=gw.ca,
        )
        assert created.status_code == 201, created.text
    context = login(browser, "sam")
    page = context.new_page()
    page.goto(f"{origin_of(gw)}/gateway/default/livy/ui")
    rows = page.locator("#interactive-sessions tr")
    expect(rows.first).to_contain_text("sam-notebook")
    texts = rows.all_inner_texts()
    assert all("sam-notebook" in t for t in texts) and not any("ava" in t for t in texts), texts
    # Its link to the session's own page works.
    rows.first.get_by_role("link").first.click()
    page.wait_for_url("**/gateway/default/livy/ui/session/*")
    expect(page.locator("#session-summary")).to_contain_text("sam-notebook")
    context.close()


def test_markup_in_a_session_name_runs_nothing_in_an_administrators_browser(history_gateway, browser):
    gw = history_gateway
    hostile = '<img id="planted" src="x" onerror="window.__pwned = 1">'
    created = requests.post(
        f"{gw.url}/sessions", json={"kind": "pyspark", "name": hostile},
        auth=("ava", PASSWORD), verify=gw.ca,
    )
    assert created.status_code == 201, created.text
    context = login(browser, "admin")
    page = context.new_page()
    page.goto(f"{origin_of(gw)}/gateway/default/livy/ui/session/{created.json()['id']}")
    # Livy's page wrote the name into the summary unescaped (its own script ran)…
    expect(page.locator("#session-summary #planted")).to_have_count(1)
    expect(page.locator("#session-summary")).to_contain_text("Owner")
    # … and the planted handler did not run.
    page.wait_for_function("document.getElementById('planted').complete")
    assert page.evaluate("window.__pwned") is None
    context.close()
