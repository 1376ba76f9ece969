"""Where the user is: a route kept in the URL's query parameters.

Every view is addressable (``?page=trial&study=cifar&trial=42``), so a link
to a trial can be shared, the browser's back button works, and tests open a
page directly. Parsing is lenient: a malformed parameter falls back to the
nearest sensible page with a note, never an error page.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

PAGES = ("studies", "trials", "trial", "compare")
TITLES = {"studies": "Studies", "trials": "Trials", "trial": "Trial detail", "compare": "Compare"}
#: Most trials one comparison shows.
MAX_COMPARE = 8


@dataclass(frozen=True)
class Route:
    page: str = "studies"
    study: str | None = None
    trial: int | None = None
    compare: tuple[int, ...] = ()
    notes: tuple[str, ...] = field(default=(), compare=False)


def parse_route(params: Mapping[str, object]) -> Route:
    """The route in query parameters; problems become ``notes`` and a fallback page."""
    notes: list[str] = []
    page = _first(params.get("page")) or "studies"
    if page not in PAGES:
        notes.append(f"unknown page {page!r}; allowed: {', '.join(PAGES)}")
        page = "studies"
    study = _first(params.get("study")) or None
    trial = None
    raw_trial = _first(params.get("trial"))
    if raw_trial:
        trial = _number(raw_trial)
        if trial is None:
            notes.append(f"trial {raw_trial!r} is not a trial number")
    compare, bad = parse_numbers(_first(params.get("compare")) or "")
    notes += [f"{b!r} in compare is not a trial number" for b in bad]
    if page != "studies" and study is None:
        notes.append(f"the {TITLES[page]} page needs a study; pick one")
        page = "studies"
    if page == "trial" and trial is None:
        page = "trials"
    return Route(page, study, trial, compare, tuple(notes))


def route_params(route: Route) -> dict[str, str]:
    """Query parameters of ``route`` (only what it uses)."""
    params = {"page": route.page}
    if route.study is not None:
        params["study"] = route.study
    if route.page == "trial" and route.trial is not None:
        params["trial"] = str(route.trial)
    if route.page == "compare" and route.compare:
        params["compare"] = ",".join(map(str, route.compare))
    return params


def parse_numbers(text: str) -> tuple[tuple[int, ...], list[str]]:
    """Trial numbers from ``"3, 17 42"``: (distinct numbers in order, unparseable parts)."""
    numbers: list[int] = []
    bad: list[str] = []
    for part in text.replace(",", " ").split():
        number = _number(part)
        if number is None:
            bad.append(part)
        elif number not in numbers:
            numbers.append(number)
    return tuple(numbers), bad


def _number(text: str) -> int | None:
    text = text.strip().lstrip("#")
    if not text.isdigit() or len(text) > 10:
        return None
    return int(text)


def _first(value: object) -> str | None:
    if isinstance(value, list | tuple):
        value = value[0] if value else None
    return None if value is None else str(value)
