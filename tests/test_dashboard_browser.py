"""End to end in a real browser: ``nas dashboard`` served, driven with headless Chromium.

Starts the real command on a seeded store, opens it in Debian's Chromium via
Playwright (the installed browser, never a downloaded one), checks that the
studies table, the Pareto plot and a trial's architecture graph render,
clicks from the studies table into a study and on into a trial, and saves a
screenshot of each page under the test's temporary directory.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import nas

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


def seed(url: str) -> nas.Study:
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
    return study


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, nas.Study]]:
    """``nas dashboard --storage ... --port ... --host 127.0.0.1`` as a subprocess, until healthy."""
    url = f"sqlite:///{tmp_path_factory.mktemp('browser') / 'store.db'}"
    study = seed(url)
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
