"""dbt-spark-livy (Cloudera's dbt adapter over Livy, unmodified) through the
gateway: `dbt debug` (its connection test, `select 1 as id` in a SQL session) and
`dbt run` of a model materialized as a table. It needs Python 3.10 (dbt-core 1.3
fails on 3.11's dataclasses): tests/clients/run.sh makes `.venv/dbt` with the
machine's 3.10 interpreter when there is one; without one these tests are
skipped, saying so. Usage tracking (dbt's and the adapter's) is off: nothing
leaves loopback."""

import os
import subprocess
from pathlib import Path

import pytest

from conftest import PASSWORD

DBT = Path(os.environ.get("LIVY_DBT_BIN", Path(__file__).resolve().parents[2] / ".venv" / "dbt" / "bin" / "dbt"))

pytestmark = pytest.mark.skipif(
    not DBT.exists(), reason="no .venv/dbt: the machine has no Python 3.10 (see tests/clients/run.sh)"
)


def dbt(project: Path, gateway, *args):
    env = dict(
        os.environ,
        DBT_PROFILES_DIR=str(project),
        DO_NOT_TRACK="1",
        DBT_SEND_ANONYMOUS_USAGE_STATS="false",
        REQUESTS_CA_BUNDLE=gateway.ca,
    )
    return subprocess.run(
        [str(DBT), *args, "--project-dir", str(project)],
        cwd=project,  # dbt writes its logs/ where it runs
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture
def project(tmp_path, gateway):
    (tmp_path / "models").mkdir()
    (tmp_path / "dbt_project.yml").write_text(
        'name: livy_project\nversion: "1.0.0"\nconfig-version: 2\nprofile: livy\nmodel-paths: ["models"]\n'
    )
    (tmp_path / "models" / "my_model.sql").write_text(
        "{{ config(materialized='table') }}\nselect 1 as id, 'a' as name\n"
    )
    (tmp_path / "profiles.yml").write_text(
        f"""config:
  send_anonymous_usage_stats: false
livy:
  target: dev
  outputs:
    dev:
      type: spark_livy
      method: livy
      schema: default
      host: {gateway.url}
      user: ava
      password: {PASSWORD}
      threads: 1
      usage_tracking: false
"""
    )
    return tmp_path


def test_dbt_debug_and_run(project, gateway):
    debug = dbt(project, gateway, "debug")
    assert debug.returncode == 0, debug.stdout + debug.stderr
    assert "All checks passed" in debug.stdout, debug.stdout
    run = dbt(project, gateway, "run")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Completed successfully" in run.stdout, run.stdout
    # Through the gateway, as ava: SQL sessions made, statements run, sessions ended.
    entries = gateway.access("ava", until=lambda e: any(x["method"] == "DELETE" for x in e))
    created = [e for e in entries if e["method"] == "POST" and e["path"].endswith("/sessions")]
    statements = [e for e in entries if e["method"] == "POST" and e["path"].endswith("/statements")]
    deleted = [e for e in entries if e["method"] == "DELETE"]
    assert created and all(e["status"] == 201 for e in created), entries
    assert statements and all(e["status"] == 201 for e in statements), entries
    assert len(deleted) == len(created), "every session dbt made, it ended"
    assert all(e["status"] == 200 for e in deleted), entries
