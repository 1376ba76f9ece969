"""User-provided strings render as text on every dashboard page, and stored passwords never show.

A study written by anyone who can reach the store names its objectives,
metrics and attributes freely; an objective named ``![x](http://host/leak)``
must not make the viewer's browser fetch that URL, and HTML must not be
interpreted. The helper is checked against a real CommonMark renderer
(markdown-it, the parser family Streamlit's react-markdown follows), and the
pages through Streamlit's AppTest on a store seeded with such names.
"""

from __future__ import annotations

import re

import pytest
from dashboard_pages import open_page
from markdown_it import MarkdownIt
from markdown_it.common.utils import escapeHtml
from sqlalchemy import update
from streamlit.testing.v1 import AppTest

import nas
from dashboard.text import WORD_JOINER, as_text
from nas.store.engine import make_engine
from nas.store.schema import studies
from nas.store.url import parse_storage_url

LEAK = "http://127.0.0.1:9"
IMAGE_OBJECTIVE = f"![x]({LEAK}/objective)"
HTML_OBJECTIVE = f'<img src="{LEAK}/html"> & <b>bold</b>'
STUDY = f"evil [s]({LEAK}/study) *name*"
HOSTILE = [
    IMAGE_OBJECTIVE,
    HTML_OBJECTIVE,
    STUDY,
    f"<{LEAK}/autolink>",
    f"www.example.com and {LEAK}/bare and a@b.org",
    ":red[colour] :material/home: :smile: $x^2$ ~~gone~~ `code` __u__",
    "[ref]: http://x.example/y",
    "a | b\n--|--\n1 | 2",
    "# heading\n- item\n1. one\n> quote\n```\nfence\n```",
    "&amp; &#60; \\*literal\\* back\\slash",
]
SECRET = "s3cr3t-pw"

MD = MarkdownIt("commonmark").enable(["table", "strikethrough"])


#: GitHub Markdown's autolink literals (remark-gfm finds them in the text after escapes resolve).
GFM_AUTOLINK = re.compile(r"(?i)https?://|www\.|mailto:|[-.\w+]@[-\w]")


@pytest.mark.parametrize("value", HOSTILE)
def test_as_text_renders_exactly_the_characters(value: str) -> None:
    rendered = MD.render(as_text(value)).strip()
    lines = [escapeHtml(line) for line in value.split("\n")]
    assert rendered.replace(WORD_JOINER, "") == "<p>" + "\n".join(lines) + "</p>"
    assert "<a " not in rendered and "<img" not in rendered
    assert not GFM_AUTOLINK.search(rendered), rendered  # no URL or address left for linkifying


def test_as_text_leaves_plain_names_alone() -> None:
    assert as_text("val_acc") == "val\\_acc" and as_text("acc") == "acc" and as_text(3) == "3"


def seed(url: str) -> None:
    study = nas.create_study(
        STUDY,
        url,
        space="nb201",
        objectives={IMAGE_OBJECTIVE: "max", HTML_OBJECTIVE: "min"},
        config={"strategy": {"name": f"![strategy]({LEAK}/strategy)"}, "storage": "sqlite:///x.db"},
    )
    attrs = {f"[key]({LEAK}/key)": f"![value]({LEAK}/value)", "metrics": {"params": 10.0}}
    for i in range(3):
        trial = study.ask(node=f"![node]({LEAK}/node)")
        study.report(trial, 0, {f"![metric]({LEAK}/metric)": 0.5})
        study.tell(trial, [0.5 + i, 1.0 + i], user_attrs=attrs)
    pruned = study.ask()
    study.tell(pruned, state="PRUNED", user_attrs={"stopped_at_step": f"![step]({LEAK}/step)"})
    failed = study.ask()
    study.tell(failed, state="FAIL", error=f"Traceback:\n![err]({LEAK}/error) <img src={LEAK}/e>")
    # A row written before passwords were masked on write: the password is in the stored config.
    old = nas.create_study("old", url, space="nb201", config={"storage": "sqlite:///x.db"})
    old.tell(old.ask(), 1.0)
    engine = make_engine(parse_storage_url(url))
    with engine.begin() as connection:
        config = f'{{"storage": "postgresql+psycopg://alice:{SECRET}@db.example/nas"}}'
        connection.execute(update(studies).where(studies.c.name == "old").values(config=config))
    engine.dispose()


@pytest.fixture(scope="module")
def store_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('hostile') / 'store.db'}"
    seed(url)
    return url


#: Elements whose text (or label) Streamlit renders as Markdown.
MARKDOWN_ELEMENTS = ("title", "header", "subheader", "markdown", "caption", "info", "warning", "error")
LABELLED = ("metric", "number_input", "text_input", "button", "selectbox", "radio", "multiselect")


def markdown_sources(app: AppTest) -> list[str]:
    sources = [str(e.value) for kind in MARKDOWN_ELEMENTS for e in getattr(app, kind)]
    sources += [str(e.label) for kind in LABELLED for e in getattr(app, kind)]
    sources += [str(e.label) for e in app.get("download_button")]
    return sources


def assert_rendered_as_text(app: AppTest) -> list[str]:
    sources = markdown_sources(app)
    for source in sources:
        html = MD.render(source)
        assert "<a " not in html and "<img" not in html and "<b>" not in html, source
        assert not GFM_AUTOLINK.search(html), source
    return sources


PAGES = [
    {},
    {"page": "trials", "study": STUDY},
    {"page": "trial", "study": STUDY, "trial": "0"},
    {"page": "trial", "study": STUDY, "trial": "3"},
    {"page": "trial", "study": STUDY, "trial": "4"},
    {"page": "compare", "study": STUDY, "compare": "0,1,x](http://127.0.0.1:9/compare)"},
    {"page": "trials", "study": f"![missing]({LEAK}/missing)"},
    {"page": f"![page]({LEAK}/page)"},
]


PAGE_IDS = ["studies", "trials", "trial", "pruned", "failed", "compare", "missing-study", "bad-page"]


@pytest.mark.parametrize("params", PAGES, ids=PAGE_IDS)
def test_pages_render_user_strings_as_text(
    store_url: str, monkeypatch: pytest.MonkeyPatch, params: dict[str, str]
) -> None:
    app = open_page(store_url, monkeypatch, **params)
    sources = assert_rendered_as_text(app)
    assert any("127" in s for s in sources) or not params  # the hostile text is shown, escaped


def test_trial_page_shows_escaped_names(store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    app = open_page(store_url, monkeypatch, page="trial", study=STUDY, trial="0")
    assert app.title[0].value == f"Trial 0 · {as_text(STUDY)}"
    labels = [m.label for m in app.metric]
    assert f"{as_text(IMAGE_OBJECTIVE)} (max)" in labels and f"{as_text(HTML_OBJECTIVE)} (min)" in labels
    assert any(as_text(f"![node]({LEAK}/node)") in c.value for c in app.caption)
    pruned = open_page(store_url, monkeypatch, page="trial", study=STUDY, trial="3")
    assert any(as_text(f"![step]({LEAK}/step)") in w.value for w in pruned.warning)
    trials = open_page(store_url, monkeypatch, page="trials", study=STUDY)
    assert trials.title[0].value == f"Study {as_text(STUDY)}"
    assert any(as_text(IMAGE_OBJECTIVE) in m.value for m in trials.markdown)


def test_a_password_stored_before_masking_is_not_shown(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = open_page(store_url, monkeypatch, page="trial", study="old", trial="0")
    shown = "\n".join(str(j.value) for j in app.json)
    assert "alice:***@db.example" in shown and SECRET not in shown
