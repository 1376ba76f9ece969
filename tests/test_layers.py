"""The architecture holds: layers (import-linter), no import cycle (grimp), light kernels, small files.

These are the rules of ``docs/architecture.md``; each test names what broke
so that a new plugin that reaches across a layer fails here, not in review.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import grimp
import networkx as nx
import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("nas", "search_spaces", "predictors", "dashboard")
MAX_LINES = 600


def _env() -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    }


def test_import_linter_contracts_hold() -> None:
    """The contracts in pyproject.toml ([tool.importlinter]) pass: layers, and who may import what."""
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run(
        [str(lint), "--no-cache", "pyproject.toml"] if lint.exists() else ["lint-imports", "--no-cache"],
        cwd=REPO,
        env=_env(),
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert " 0 broken" in result.stdout, result.stdout[-2000:]


def test_no_import_cycle() -> None:
    """No module of the project's packages imports itself back, directly or through others."""
    graph = grimp.build_graph(*PACKAGES, exclude_type_checking_imports=True)
    edges = nx.DiGraph()
    for module in graph.modules:
        for imported in graph.find_modules_directly_imported_by(module):
            edges.add_edge(module, imported)
    cycles = sorted(sorted(c) for c in nx.strongly_connected_components(edges) if len(c) > 1)
    assert cycles == [], f"import cycles: {cycles}"


@pytest.mark.parametrize(
    ("code", "forbidden"),
    [
        ("import nas.core, nas.strategies, nas.store", ("torch", "ray", "streamlit")),
        ("from nas.core.oneshot import ONESHOT; assert 'darts' in ONESHOT", ("torch", "ray", "streamlit")),
        (
            "import nas.oneshot; from nas.core.oneshot import ONESHOT\n"
            "assert {'darts', 'gdas', 'pc_darts', 'spos'} <= set(ONESHOT.names())",
            ("torch", "ray", "streamlit"),
        ),
        (
            "from search_spaces import get_space, list_spaces\n"
            "for n in list_spaces():\n"
            "    s = get_space(n); a = s.sample(0)\n"
            "    assert s.parse(s.format(a)) == a and s.canonical_key(a) and s.oneshot_view is not None",
            ("torch", "ray", "streamlit"),
        ),
        ("import nas.settings", ("torch", "ray", "streamlit", "sqlalchemy")),
        ("import nas.retrieval", ("torch", "ray", "streamlit")),
    ],
)
def test_light_modules_stay_light(code: str, forbidden: tuple[str, ...]) -> None:
    """The kernel, strategies, store and settings, and a registry membership test, import no heavy engine."""
    check = f"import sys\n{code}\nprint(sorted(m for m in {forbidden!r} if m in sys.modules))"
    result = subprocess.run(
        [sys.executable, "-c", check], cwd=REPO, env=_env(), capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]", f"{code!r} imported {result.stdout.strip()}"


def test_no_module_longer_than_the_limit() -> None:
    """Each concept in a small module: no source file of the packages exceeds MAX_LINES lines."""
    long = {
        str(path.relative_to(REPO)): n
        for folder in PACKAGES
        for path in (REPO / folder).rglob("*.py")
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert long == {}, f"files over {MAX_LINES} lines: {long}"
