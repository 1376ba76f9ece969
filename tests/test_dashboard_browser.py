"""End to end in a real browser: ``nas dashboard`` served, driven with headless Chromium.

Starts the real command on a seeded store, opens it in Debian's Chromium via
Playwright (the installed browser, never a downloaded one), checks that the
studies table, the Pareto plot and a trial's architecture graph render,
clicks from the studies table into a study and on into a trial, and saves a
screenshot of each page under the test's temporary directory. A study whose
names hold Markdown images, links and HTML pointing at a local listener
checks that the browser shows them as text and never requests their URLs.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

import nas
from dashboard.text import WORD_JOINER
from nas.core.trial import Trial, TrialState
from nas.store.records import EXPORT_ARTIFACT

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
REPO = Path(__file__).resolve().parents[1]
TIMEOUT_MS = 90_000

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def chromium() -> Path:
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing in CI (.ci/run installs Debian's chromium package)")
        pytest.skip(f"{CHROMIUM} not installed (apt-get install chromium)")
    return CHROMIUM


class Leak:
    """A local HTTP listener that records every request: hostile names point at it."""

    def __init__(self) -> None:
        hits: list[str] = []

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the http.server hook name
                hits.append(self.path)
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.hits = hits
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture(scope="module")
def leak() -> Iterator[Leak]:
    listener = Leak()
    yield listener
    listener.server.shutdown()


def hostile_names(leak: str) -> dict[str, str]:
    return {
        "study": f"evil [s]({leak}/study) *name*",
        "image": f"![x]({leak}/objective)",
        "html": f'<img src="{leak}/html"> <b>bold</b>',
    }


def seed_hostile(url: str, leak: str) -> None:
    """A study whose names, attributes, worker and errors hold Markdown and HTML aimed at ``leak``."""
    names = hostile_names(leak)
    study = nas.create_study(
        names["study"], url, space="nb201", objectives={names["image"]: "max", names["html"]: "min"}
    )
    attrs = {f"[key]({leak}/key)": f"![value]({leak}/value)"}
    for i in range(3):
        trial = study.ask(node=f"![node]({leak}/node)")
        study.report(trial, 0, {f"![metric]({leak}/metric)": 0.5, f"<img src={leak}/m>": 1.0})
        study.tell(trial, [0.5 + i, 3.0 - i], user_attrs=attrs)
    study.tell(study.ask(), state="PRUNED", user_attrs={"stopped_at_step": f"![step]({leak}/step)"})
    study.tell(study.ask(), state="FAIL", error=f"![err]({leak}/error) <img src={leak}/e>")


def seed(url: str, leak: str) -> nas.Study:
    study = nas.create_study(
        "cifar-pareto", url, space="nb201", objectives={"val_accuracy": "max", "latency_ms": "min"}
    )
    rng = np.random.default_rng(7)
    for i in range(30):
        trial = study.ask()
        if i == 4:
            study.tell(trial, state="FAIL", error="RuntimeError: simulated failure")
            continue
        for epoch in range(4):
            study.report(trial, epoch, {"val_accuracy": 40 + 10 * epoch + float(rng.normal(0, 2))})
        study.tell(trial, [float(rng.normal(70, 6)), float(rng.gamma(2, 3))])
    study.finish()
    other = nas.create_study("fbnet-latency", url, space="fbnet", objectives={"latency_ms": "min"})
    other.tell(other.ask(), 12.5)
    seed_hostile(url, leak)
    seed_specialization(url)
    return study


#: Where the seeded specialisation study's 12 ms pick was exported (only recorded: no bundle is written).
BUNDLE = Path("/srv/models/pixel3-12ms")


def seed_specialization(url: str) -> None:
    """Candidates and picks for two budgets on pixel3, as ``nas specialize`` stores them; one pick exported."""
    config = {"strategy": {"name": "bignas"}, "specialize": {"targets": [{"device": "pixel3"}]}}
    objectives = {"val_accuracy": "max", "latency_ms": "min"}
    study = nas.create_study("nb201-specialized", url, space="nb201", objectives=objectives, config=config)
    rng = np.random.default_rng(3)
    for budget in (9.0, 12.0):
        attrs = {
            "device": "pixel3",
            "max_latency_ms": budget,
            "target": f"pixel3<={budget:g}",
            "derived_from": 0,
        }
        candidates = study.add_trials(
            [
                Trial(0, study.space.sample(rng), TrialState.COMPLETE,
                          values={"val_accuracy": 50.0 + i, "latency_ms": budget - 3 + i},
                          system_attrs={**attrs, "kind": "candidate"})
                for i in range(3)
            ]
        )  # fmt: skip
        best = candidates[-1]
        (pick,) = study.add_trials(
            [Trial(0, best.arch, TrialState.COMPLETE, values=dict(best.values),
                       system_attrs={**attrs, "kind": "specialized", "candidate": best.number})]
        )  # fmt: skip
    study.add_artifact(pick, EXPORT_ARTIFACT, BUNDLE.as_uri(), "0" * 64)  # as `nas export` records it


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, leak: Leak) -> Iterator[tuple[str, nas.Study]]:
    """``nas dashboard --storage ... --port ... --host 127.0.0.1`` as a subprocess, until healthy."""
    url = f"sqlite:///{tmp_path_factory.mktemp('browser') / 'store.db'}"
    study = seed(url, leak.base)
    port = free_port()
    log = tmp_path_factory.mktemp("server") / "server.log"
    with log.open("w") as sink:
        process = subprocess.Popen(
            [sys.executable, "-c", "from nas.cli import main; main()", "dashboard"]
            + ["--storage", url, "--port", str(port), "--host", "127.0.0.1"],
            cwd=REPO,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{base}/_stcore/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"the dashboard did not come up:\n{log.read_text()[-3000:]}")
                time.sleep(0.3)
        yield base, study
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_studies_trials_pareto_and_architecture_render_in_chromium(
    chromium: Path, server: tuple[str, nas.Study], tmp_path: Path
) -> None:
    from playwright.sync_api import expect, sync_playwright

    base, study = server
    expect.set_options(timeout=TIMEOUT_MS)  # the first page of a fresh server imports torch
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 2400})  # tall: the app scrolls inside
            page.set_default_timeout(TIMEOUT_MS)

            # Studies: the table lists both studies with their spaces.
            page.goto(base)
            grid = page.locator("[data-testid='stDataFrame'] table[role='grid']").first
            expect(grid).to_contain_text("cifar-pareto")
            expect(grid).to_contain_text("fbnet-latency")
            expect(grid).to_contain_text("nb201")
            page.screenshot(path=str(tmp_path / "studies.png"), full_page=True)

            # Click the first row's selection box: the app opens that study's trials.
            canvas = page.locator("[data-testid='stDataFrame'] canvas").first
            box = canvas.bounding_box()
            assert box is not None
            page.mouse.click(box["x"] + 18, box["y"] + 35 + 17)  # selection column, first data row
            expect(page.get_by_role("heading", name="Study cifar-pareto")).to_be_visible()
            trials_grid = page.locator("[data-testid='stDataFrame'] table[role='grid']").first
            latest = study.trial(29)
            expect(trials_grid).to_contain_text(study.space.format(latest.arch))  # latest first

            # The Pareto plot: a Vega-Lite chart drawn by the browser.
            page.get_by_text("Pareto front", exact=True).click()
            pareto = page.locator("[data-testid='stVegaLiteChart']").first
            expect(pareto.locator("canvas, svg").first).to_be_visible()
            expect(page.get_by_text("non-dominated trials")).to_be_visible()
            page.screenshot(path=str(tmp_path / "trials.png"), full_page=True)

            # Open a trial by number: its architecture is drawn as an SVG graph with op names.
            number = 3
            field = page.get_by_label("open trial #")
            field.fill(str(number))
            field.press("Enter")
            expect(page.get_by_role("heading", name=f"Trial {number} · cifar-pareto")).to_be_visible()
            drawing = page.locator("[data-testid='stGraphVizChart'] svg").first
            expect(drawing).to_be_visible()
            labels = " ".join(drawing.locator("text").all_text_contents())
            for op in set(study.trial(number).arch.as_dict().values()):
                assert op in labels
            expect(page.locator("[data-testid='stVegaLiteChart']").first).to_be_visible()  # curves
            page.screenshot(path=str(tmp_path / "trial.png"), full_page=True)
        finally:
            browser.close()
    for name in ("studies", "trials", "trial"):
        assert (tmp_path / f"{name}.png").stat().st_size > 10_000


def test_the_devices_view_shows_which_pick_was_exported_for_which_target(
    chromium: Path, server: tuple[str, nas.Study], tmp_path: Path
) -> None:
    from playwright.sync_api import expect, sync_playwright

    base, _ = server
    expect.set_options(timeout=TIMEOUT_MS)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 2400})
            page.set_default_timeout(TIMEOUT_MS)
            page.goto(f"{base}/?page=trials&study=nb201-specialized")
            expect(page.get_by_role("heading", name="Study nb201-specialized")).to_be_visible()
            page.get_by_text("Devices", exact=True).click()
            expect(
                page.locator("[data-testid='stVegaLiteChart']").first.locator("canvas, svg").first
            ).to_be_visible()
            targets = page.locator("[data-testid='stDataFrame'] table[role='grid']").filter(
                has_text="exported"
            )
            expect(targets).to_contain_text("pixel3 <= 9 ms")
            expect(targets).to_contain_text("pixel3 <= 12 ms")
            expect(targets).to_contain_text(str(BUNDLE))
            page.screenshot(path=str(tmp_path / "devices.png"), full_page=True)
        finally:
            browser.close()
    assert (tmp_path / "devices.png").stat().st_size > 10_000


def test_hostile_names_show_as_text_and_fetch_nothing(
    chromium: Path, server: tuple[str, nas.Study], leak: Leak, tmp_path: Path
) -> None:
    """Every page of the hostile study: names appear literally, no request ever reaches their URLs."""
    from urllib.parse import urlencode

    from playwright.sync_api import expect, sync_playwright

    base, _ = server
    names = hostile_names(leak.base)
    expect.set_options(timeout=TIMEOUT_MS)
    requested: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 2400})
            page.set_default_timeout(TIMEOUT_MS)
            page.on("request", lambda request: requested.append(request.url))
            main = page.locator("[data-testid='stMain']")

            def visit(landmark: str, **params: str) -> None:
                page.goto(f"{base}/?{urlencode(params)}" if params else base)
                expect(main).to_contain_text(landmark)
                page.wait_for_load_state("networkidle")

            def check(shot: str, *literal: str) -> None:
                """The page shows each ``literal`` as text, with no image or link to the listener."""
                page.wait_for_timeout(500)  # let any image the page holds start loading
                page.screenshot(path=str(tmp_path / f"{shot}.png"), full_page=True)
                assert not [u for u in requested if u.startswith(leak.base)] and not leak.hits, shot
                shown = main.inner_text().replace(WORD_JOINER, "")  # invisible: keeps URLs unlinked
                for text in literal:
                    assert text in shown, (shot, text)
                linked = page.locator(f"img[src*='{leak.base}'], a[href*='{leak.base}']")  # sidebar too
                assert linked.count() == 0, shot

            visit("Studies")
            grid = page.locator("[data-testid='stDataFrame'] table[role='grid']").first
            expect(grid).to_contain_text(names["study"])
            check("hostile-studies")

            visit("Study evil", page="trials", study=names["study"])
            page.get_by_text("Filter and sort").click()
            page.get_by_text("Pareto front", exact=True).click()
            expect(page.locator("[data-testid='stVegaLiteChart']").first).to_be_visible()
            check("hostile-trials", f"Study {names['study']}", names["image"], f"{names['html']} ≥")

            visit("Trial 0", page="trial", study=names["study"], trial="0")
            page.get_by_text("trial record and study config").click()
            check("hostile-trial", f"Trial 0 · {names['study']}", f"{names['html']} (min)", "![node](")

            visit("Trial 3", page="trial", study=names["study"], trial="3")
            check("hostile-pruned", f"at step ![step]({leak.base}/step).")

            visit("Trial 4", page="trial", study=names["study"], trial="4")
            check("hostile-failed", f"![err]({leak.base}/error) <img src={leak.base}/e>")

            visit("Compare", page="compare", study=names["study"], compare=f"0 1 ![c]({leak.base}/c)")
            check("hostile-compare", f"![c]({leak.base}/c)")

            visit("no study", page="trials", study=f"![missing]({leak.base}/missing)")
            check("hostile-missing", f"![missing]({leak.base}/missing)")
        finally:
            browser.close()
    assert not [u for u in requested if u.startswith(leak.base)], requested
    assert leak.hits == []
