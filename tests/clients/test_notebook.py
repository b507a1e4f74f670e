"""sparkmagic through real Jupyter kernels: notebooks executed with `jupyter
nbconvert --execute` on sparkmagic's pysparkkernel and sparkkernel (installed
into a scratch Jupyter directory), configured by a sparkmagic config.json naming
the gateway: a session, statements, `%%configure`, `%%sql` into a local
DataFrame, `%%logs`, an error, `%%cleanup`; and a wrong password's clear 401."""

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import PASSWORD

KERNELS = Path(__import__("sparkmagic").__file__).parent / "kernels"
BIN = Path(sys.executable).parent


def cell(source):
    return {"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [], "source": source}


def run_notebook(tmp_path, gateway, kernel, cells, password=PASSWORD):
    """Executes `cells` on `kernel` as user sam; the executed notebook's cells."""
    jupyter = tmp_path / "jupyter"
    env = dict(
        os.environ,
        JUPYTER_DATA_DIR=str(jupyter),
        JUPYTER_CONFIG_DIR=str(tmp_path / "jupyter-config"),
        SPARKMAGIC_CONF_DIR=str(tmp_path / "sparkmagic"),
        REQUESTS_CA_BUNDLE=gateway.ca,
        HOME=str(tmp_path),
    )
    subprocess.run(
        [BIN / "jupyter-kernelspec", "install", "--user", "--name", kernel, str(KERNELS / kernel)],
        env=env,
        check=True,
        capture_output=True,
    )
    credentials = {
        "username": "sam",
        "base64_password": base64.b64encode(password.encode()).decode(),
        "url": gateway.url,
        "auth": "Basic_Access",
    }
    (tmp_path / "sparkmagic").mkdir()
    (tmp_path / "sparkmagic" / "config.json").write_text(
        json.dumps(
            {
                "kernel_python_credentials": credentials,
                "kernel_scala_credentials": credentials,
                "livy_session_startup_timeout_seconds": 60,
                # The kernel's heartbeat thread sleeps this long at a time, and
                # the kernel waits for it when it shuts down.
                "heartbeat_refresh_seconds": 1,
            }
        )
    )
    notebook = {
        "cells": [cell(c) for c in cells],
        "metadata": {"kernelspec": {"name": kernel, "display_name": kernel, "language": "python"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    path = tmp_path / "in.ipynb"
    path.write_text(json.dumps(notebook))
    out = subprocess.run(
        [
            BIN / "jupyter-nbconvert", "--to", "notebook", "--execute", "--allow-errors",
            "--ExecutePreprocessor.timeout=120", "--output", "out.ipynb", str(path),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    return json.loads((tmp_path / "out.ipynb").read_text())["cells"]


def text_of(cell):
    """Everything a cell showed, as text."""
    parts = []
    for output in cell["outputs"]:
        parts.append(output.get("text", ""))
        data = output.get("data", {})
        for kind in ("text/plain", "text/html"):
            value = data.get(kind, "")
            parts.append("".join(value) if isinstance(value, list) else value)
        if output.get("output_type") == "error":
            parts.append(f'{output["ename"]}: {output["evalue"]}')
    return "".join("".join(p) if isinstance(p, list) else p for p in parts)


def test_pyspark_notebook(gateway, tmp_path):
    cells = run_notebook(
        tmp_path,
        gateway,
        "pysparkkernel",
        [
            '%%configure -f\n{"driverMemory": "1g", "conf": {"spark.dynamicAllocation.minExecutors": 2}}',
            "1+1",
            # Into a local DataFrame (-o), not sparkmagic's table widget, which
            # waits for a browser that executing a notebook headless has not.
            "%%sql -q -o rows\nselect 1 as a, 'x' as b",
            "%%local\nprint(rows.values.tolist())",
            "%%logs",
            "raise ValueError('boom')",
            "%%cleanup -f",
        ],
    )
    shown = [text_of(c) for c in cells]
    for i, text in enumerate(shown):
        if i != 5:  # the cell that raises
            assert "error" not in text.lower(), text
    assert "Current session configs" in shown[0] and "1g" in shown[0], shown[0]
    assert shown[1].endswith("2"), shown[1]
    assert shown[3] == "[[1, 'x']]\n", shown[3]
    assert "Submitted application" in shown[4], shown[4]
    assert "ValueError: boom" in shown[5], shown[5]
    # The session ran as sam, and %%cleanup deleted it.
    entries = gateway.access("sam", until=lambda e: any(x["method"] == "DELETE" for x in e))
    assert any(e["method"] == "POST" and e["path"].endswith("/sessions") and e["status"] == 201 for e in entries)
    assert any(e["method"] == "DELETE" and e["status"] == 200 for e in entries)


def test_scala_notebook(gateway, tmp_path):
    cells = run_notebook(tmp_path, gateway, "sparkkernel", ["1 + 1", 'println("hello")', "%%cleanup -f"])
    shown = [text_of(c) for c in cells]
    # sparkmagic's start-up ran `spark` first (res0), as against Livy's Scala REPL.
    assert shown[0].endswith("res1: Int = 2\n"), shown[0]
    assert shown[1].endswith("hello\n"), shown[1]


def test_a_wrong_password_is_a_clear_401(gateway, tmp_path):
    cells = run_notebook(tmp_path, gateway, "pysparkkernel", ["1+1"], password="wrong")
    shown = text_of(cells[0])
    assert "401" in shown, shown


def test_configure_asking_for_a_refused_setting_shows_the_gateways_message(policy_gateway, tmp_path):
    """The cluster's policy refuses a setting: the notebook shows the gateway's
    message, naming the key and the rule, where the session would have started."""
    cells = run_notebook(
        tmp_path,
        policy_gateway,
        "pysparkkernel",
        ['%%configure -f\n{"conf": {"spark.driver.extraClassPath": "/tmp/mine.jar"}}', "1+1"],
    )
    shown = " ".join(text_of(c) for c in cells)
    assert "403" in shown, shown
    assert "spark.driver.extraClassPath" in shown and "deny_conf" in shown, shown
