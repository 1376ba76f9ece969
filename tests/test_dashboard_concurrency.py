"""A search writing to SQLite at full speed while the dashboard polls: nobody sees a lock.

One process asks, reports and tells trials as fast as it can through the
Study API; meanwhile this process runs every read the dashboard makes in a
loop (and renders the pages through AppTest now and then). The writer must
finish without a single error *and without a single retry* of a transaction
(a retry is what a "database is locked" turns into inside the store), and
every read must succeed and see a consistent, growing study.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

import nas
from dashboard import APP_PATH
from nas.core.trial import TrialState
from nas.store.readonly import TrialQuery, open_readonly
from nas.store.testing import ChainSpace

SECONDS = 8.0

WRITER = """
import json, logging, sys, time
from nas.store.study import load_study
from nas.store.testing import ChainSpace

class Retries(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.count = 0
    def emit(self, record):
        if "transient conflict" in record.getMessage():
            self.count += 1

retries = Retries()
engine_log = logging.getLogger("nas.store.engine")
engine_log.setLevel(logging.DEBUG)
engine_log.addHandler(retries)
url, seconds = sys.argv[1], float(sys.argv[2])
study = load_study("live", url, space=ChainSpace())
print("ready", flush=True)
errors, told, slowest = [], 0, 0.0
end = time.monotonic() + seconds
while time.monotonic() < end:
    start = time.monotonic()
    try:
        trial = study.ask()
        study.report(trial, 0, {"loss": 1.0})
        study.report(trial, 1, {"loss": 0.5})
        study.tell(trial, [float(told % 97), float(told % 13)])
        told += 1
    except Exception as exc:
        errors.append(repr(exc))
    slowest = max(slowest, time.monotonic() - start)
print(json.dumps({"told": told, "errors": errors[:5], "n_errors": len(errors), "retries": retries.count,
                  "slowest_s": slowest}))
"""


@pytest.mark.slow
def test_a_running_search_never_sees_a_lock_while_the_dashboard_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'live.db'}"
    study = nas.create_study("live", url, space=ChainSpace(), objectives={"acc": "max", "lat": "min"})
    study.tell(study.ask(), [0.0, 0.0])
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, url, str(SECONDS)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert writer.stdout is not None and writer.stdout.readline().strip() == "ready"

    store = open_readonly(url)
    sid = store.get_study("live").study_id
    monkeypatch.setenv("NAS_STORAGE", url)
    reads, renders, reader_errors = 0, 0, []
    last_next, last_complete = 0, 0
    table = store.score_table(sid, ["acc", "lat"])
    next_render = time.monotonic()
    while writer.poll() is None:
        try:
            status, next_number, running, waiting = store.study_token(sid)
            counts = store.count_trials(sid)
            assert next_number >= last_next and counts[TrialState.COMPLETE] >= last_complete
            assert sum(counts.values()) <= store.study_token(sid)[1]
            last_next, last_complete = next_number, counts[TrialState.COMPLETE]
            store.summarize_studies()
            page = store.query_trials(sid, TrialQuery(), limit=50)
            store.query_trials(sid, TrialQuery(order_by="acc", contains=('"a"',), ranges={"lat": (0.0, 6.0)}))
            store.objective_bounds(sid)
            table = table.extend(store.score_table(sid, ["acc", "lat"], after=table.settled))
            table.pareto_mask()
            store.labels(sid, table.ids[-20:])
            if page.trials:
                store.metrics(sid, page.trials[0].number)
                store.get_trial(sid, page.trials[-1].number)
            reads += 1
            if time.monotonic() >= next_render:  # the real app, caches and all
                app = AppTest.from_file(str(APP_PATH), default_timeout=60)
                app.query_params.update(page="trials", study="live")
                app.run()
                assert not app.exception and not app.error, [e.value for e in app.exception]
                renders += 1
                next_render = time.monotonic() + 2.0
        except Exception as exc:  # collected, so the writer is always waited for
            reader_errors.append(repr(exc))
    out, err = writer.communicate(timeout=60)
    store.close()
    result = json.loads(out.strip().splitlines()[-1])
    assert writer.returncode == 0, err[-2000:]
    assert result["n_errors"] == 0, result["errors"]
    assert result["retries"] == 0, "the writer had to retry a transaction: it met a lock"
    assert reader_errors == []
    assert result["told"] > 20 and reads >= 5 and renders >= 1
    final = nas.load_study("live", url).count_trials()
    assert final[TrialState.COMPLETE] == result["told"] + 1
    full = open_readonly(url).score_table(sid, ["acc", "lat"])
    assert len(full) == final[TrialState.COMPLETE]
