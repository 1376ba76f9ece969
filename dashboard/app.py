"""The dashboard's Streamlit script: ``streamlit run dashboard/app.py`` (what ``nas dashboard`` runs).

It reads the store named by ``$NAS_STORAGE`` (default ``sqlite:///nas.db``;
``nas dashboard --storage URL`` sets the variable), routes by the URL's query
parameters (:mod:`dashboard.navigation`) and turns every problem into a
friendly message: a missing or empty store, an unknown study or trial, a
space plugin that is not installed, an old schema. No page ever shows a
traceback; unexpected errors are logged on the server with theirs.
"""

from __future__ import annotations

import importlib.util
import logging
import sys
from pathlib import Path

if importlib.util.find_spec("dashboard") is None:  # run as a script from a source checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import streamlit as st  # noqa: E402

from dashboard import queries  # noqa: E402
from dashboard.navigation import PAGES, TITLES, Route, parse_route  # noqa: E402
from dashboard.text import as_text  # noqa: E402
from dashboard.views import common, compare, studies, trial, trials  # noqa: E402
from nas.core.errors import NASError  # noqa: E402
from nas.store.errors import StudyNotFoundError, TrialNotFoundError  # noqa: E402
from nas.store.readonly import StoreMissingError  # noqa: E402
from nas.store.url import mask_url, resolve_storage_url  # noqa: E402

log = logging.getLogger("dashboard")


def main() -> None:
    st.set_page_config(page_title="NAS dashboard", page_icon="🧬", layout="wide")
    url = resolve_storage_url()
    route = parse_route(st.query_params.to_dict())
    _sidebar(url, route)
    common.show_notes(route.notes)
    try:
        _page(url, route)
    except StoreMissingError as exc:
        st.title("No store yet")
        st.info(as_text(exc))
    except StudyNotFoundError as exc:
        st.warning(as_text(exc))
        common.nav_button("← all studies", Route("studies"), key="missing_study_back")
    except TrialNotFoundError as exc:
        st.warning(as_text(exc))
        if route.study is not None:
            common.nav_button("← trials", Route("trials", route.study), key="missing_trial_back")
    except NASError as exc:
        st.error(as_text(exc))
    except Exception as exc:  # noqa: BLE001 - the page must stay usable; the log has the traceback
        log.exception("dashboard page %s failed", route)
        st.error(
            f"Something went wrong while showing this page ({type(exc).__name__}: {as_text(exc)}). "
            "The dashboard's log has the details; other pages still work."
        )


def _page(url: str, route: Route) -> None:
    store = queries.storage(url)
    if not store.has_schema:
        st.title("Studies")
        st.info(f"The store at {as_text(store.url)} is empty: no search has written to it yet.")
        return
    if route.page == "studies" or route.study is None:
        studies.render(url)
    elif route.page == "trials":
        trials.render(url, route.study)
    elif route.page == "trial" and route.trial is not None:
        trial.render(url, route.study, route.trial)
    else:
        compare.render(url, route.study, route.compare)


def _sidebar(url: str, route: Route) -> None:
    with st.sidebar:
        st.header("NAS dashboard")
        st.caption(f"store: {as_text(mask_url(url))}")
        names: list[str] = []
        try:
            names = queries.study_names(url) if queries.storage(url).has_schema else []
        except NASError:
            pass  # the page itself explains the problem
        pages = [p for p in PAGES if names or p == "studies"]
        current = route.page if route.page in pages else "studies"
        choice = st.radio(
            "page", pages, index=pages.index(current), format_func=TITLES.get, key=common.nav_key("nav_page")
        )
        if names:
            study = route.study if route.study in names else None
            picked = st.selectbox(
                "study",
                names,
                index=names.index(study) if study is not None else None,
                placeholder="choose a study",
                key=common.nav_key("nav_study"),
            )
        else:
            picked = None
        if picked is not None and picked != route.study:
            common.go(Route("trials", picked))  # a study was chosen: open its trials
        elif choice != current:
            common.go(Route(choice, route.study, trial=route.trial, compare=route.compare))


main()
