"""The cluster path, proven on this machine: ``deploy/local/cluster.sh`` + ``ray job submit``.

One module-scoped "cluster" as docs/cluster.md describes it: a Ray head and a
worker (one CPU each, token authentication, 127.0.0.1), the local PostgreSQL
as the store (a schema of its own), and the dashboard on a read-only role,
all started by the script users run. A small real search (NAS-Bench-201
cells trained on digits) is submitted with ``ray job submit`` exactly as the
docs show, then:

* its trials are in PostgreSQL and ran on both Ray nodes;
* no database credential travels with the job (the driver inherits the
  head's environment) and none appears in the job's logs;
* the dashboard started by the script answers and, reading through the
  read-only role, shows the study; that role cannot write;
* ``nas export --best`` builds the model from the weights the driver stored.

Marked ``slow``, ``ray`` and ``postgres``. The script stops exactly the
processes it started (by session id), never every Ray on the machine.
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from conftest import require_tool
from local_cluster import Cluster, local_cluster
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ProgrammingError
from store_fixtures import postgres_url  # noqa: F401  (fixture)

import nas
from nas.core import TrialState
from nas.store.records import EXPORT_ARTIFACT
from nas.store.testing import run_sql, temporary_schema

pytestmark = [pytest.mark.slow, pytest.mark.ray, pytest.mark.postgres]

#: A password in the owner's URL. The test server trusts local connections, so it is
#: never checked; it is there to be looked for where it must not appear.
SECRET = f"s3cret{uuid.uuid4().hex[:10]}"
STUDY = f"cluster-{uuid.uuid4().hex[:8]}"
SEARCH = {
    "name": STUDY,
    "space": {"name": "nb201", "channels": 8, "cells": 1},
    "dataset": {"name": "digits"},
    "strategy": {"name": "random"},
    "evaluator": {"name": "train", "epochs": 2, "batch_size": 64, "lr": 0.05},
    "objectives": {"val_accuracy": "max"},
    "budget": {"trials": 4, "concurrent": 2},
    "resources": {"cpu": 1, "gpu": 0},
}


@pytest.fixture(scope="module")
def cluster(postgres_url: str) -> Iterator[Cluster]:  # noqa: F811
    pytest.importorskip("ray")
    require_tool("psql", "the PostgreSQL client creates the read-only role")
    role = f"nas_ro_{uuid.uuid4().hex[:10]}"
    with temporary_schema(postgres_url) as url:
        owner = make_url(url).set(password=SECRET).render_as_string(hide_password=False)
        try:
            with local_cluster(owner, {"NAS_DASHBOARD_ROLE": role}) as running:
                yield running
        finally:
            if run_sql(postgres_url, "SELECT 1 FROM pg_roles WHERE rolname = :r", {"r": role}):
                run_sql(postgres_url, f'DROP OWNED BY "{role}"')
                run_sql(postgres_url, f'DROP ROLE "{role}"')


@pytest.fixture(scope="module")
def search_job(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> str:
    """Submit the search as the docs do; return the submission id."""
    workdir = tmp_path_factory.mktemp("job")
    (workdir / "search.yaml").write_text(yaml.safe_dump(SEARCH))
    job = f"nas-test-{uuid.uuid4().hex[:8]}"
    submitted = cluster.run(
        f"ray job submit --submission-id {job} --working-dir {workdir} -- nas search search.yaml --quiet",
        timeout=480,
    )
    if submitted.returncode != 0:
        pytest.fail(f"ray job submit failed:\n{submitted.stdout[-4000:]}\n{submitted.stderr[-4000:]}")
    return job


def test_search_job_stores_every_trial_in_postgres_from_both_nodes(cluster: Cluster, search_job: str) -> None:
    study = nas.load_study(STUDY, storage=cluster.owner_url)
    trials = study.trials()
    assert len(trials) == SEARCH["budget"]["trials"]
    assert {t.state for t in trials} == {TrialState.COMPLETE}
    assert all(0.0 < t.value("val_accuracy") <= 100.0 for t in trials)
    nodes = {t.node for t in trials}
    assert len(nodes) == 2, f"trials ran on {nodes}; expected both Ray nodes"
    artifacts = cluster.state / "artifacts"  # the head's NAS_ARTIFACTS, set by cluster.sh
    for trial in trials:
        (artifact,) = study.artifacts(trial)
        path = Path(artifact.uri.removeprefix("file://"))
        assert path.is_file() and artifacts in path.parents


def test_no_credential_travels_with_the_job(cluster: Cluster, search_job: str) -> None:
    listed = cluster.run(f"ray job status {search_job} --log-style record", timeout=120)
    assert listed.returncode == 0, listed.stderr
    info = cluster.run("ray job list --log-style record", timeout=120)
    assert info.returncode == 0, info.stderr
    assert search_job in info.stdout
    assert SECRET not in info.stdout + info.stderr  # neither the entrypoint nor the runtime env holds it


def test_no_credential_in_the_job_logs(cluster: Cluster, search_job: str) -> None:
    logged = cluster.run(f"ray job logs {search_job}", timeout=120)
    assert logged.returncode == 0, logged.stderr
    assert STUDY in logged.stdout
    assert SECRET not in logged.stdout


def test_dashboard_shows_the_study_through_a_read_only_role(
    cluster: Cluster, search_job: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from streamlit.testing.v1 import AppTest

    from dashboard import APP_PATH

    health = f"http://127.0.0.1:{cluster.dashboard_port}/_stcore/health"
    with urllib.request.urlopen(health, timeout=10) as response:
        assert response.status == 200 and response.read().strip() == b"ok"

    url_file = cluster.state / "dashboard_storage_url"
    assert url_file.stat().st_mode & 0o077 == 0  # readable by its owner only
    readonly = url_file.read_text().strip()
    assert make_url(readonly).username == cluster.env["NAS_DASHBOARD_ROLE"]

    monkeypatch.setenv("NAS_STORAGE", readonly)
    app = AppTest.from_file(str(APP_PATH), default_timeout=90)
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    table = app.dataframe[0].value
    row = table[table["study"] == STUDY].iloc[0]
    assert (row["trials"], row["complete"]) == (4, 4)

    # The role itself can read but not write, whatever the session asks for.
    assert run_sql(readonly, "SELECT count(*) FROM trials")[0][0] >= 4
    for statement in (
        "SET TRANSACTION READ WRITE; UPDATE studies SET status = 'failed'",
        "SET TRANSACTION READ WRITE; CREATE TABLE intruder (x int)",
    ):
        with pytest.raises(ProgrammingError, match="permission denied"):
            run_sql(readonly, statement)


def test_export_of_the_best_trial_uses_the_stored_weights(
    cluster: Cluster, search_job: str, tmp_path: Path
) -> None:
    out = tmp_path / "bundle"
    exported = subprocess.run(
        [sys.executable, "-m", "nas.cli", "export", STUDY, "--best", "--format", "all", "--out", str(out)],
        env={**cluster.env, "NAS_STORAGE": cluster.owner_url},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert exported.returncode == 0, exported.stderr[-3000:]
    card = json.loads((out / "card.json").read_text())
    study = nas.load_study(STUDY, storage=cluster.owner_url)
    best = study.best_trial
    assert card["weights"]["kind"] == "stored"
    (artifact,) = [a for a in study.artifacts(best) if a.kind == "weights"]
    assert card["weights"]["sha256"] == artifact.sha256
    (record,) = [a for a in study.artifacts(best) if a.kind == EXPORT_ARTIFACT]  # nas export recorded it
    assert record.uri.startswith("file://") and record.uri.endswith("/bundle")
    for name in card["files"]:
        assert (out / name).is_file()
    assert SECRET not in exported.stdout + exported.stderr
