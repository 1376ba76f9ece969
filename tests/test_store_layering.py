"""Architecture rules the store relies on: SQLAlchemy stays inside nas/store, ``import nas`` stays cheap."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
_IMPORT = re.compile(r"^\s*(from|import)\s+(sqlalchemy|alembic|psycopg)\b", re.MULTILINE)


def test_only_the_store_imports_sqlalchemy_alembic_or_psycopg() -> None:
    offenders = []
    for folder in ("nas", "search_spaces", "predictors", "dashboard"):
        for path in (REPO / folder).rglob("*.py"):
            relative = path.relative_to(REPO)
            if relative.parts[:2] == ("nas", "store"):
                continue
            if _IMPORT.search(path.read_text(encoding="utf-8")):
                offenders.append(str(relative))
    assert offenders == []


def _python(*statements: str) -> None:
    """Run statements in a fresh interpreter: what they check is what importing loads."""
    subprocess.run([sys.executable, "-c", "; ".join(statements)], check=True, cwd=REPO)


def test_import_nas_does_not_load_the_store() -> None:
    _python(
        "import sys, nas",
        "assert 'sqlalchemy' not in sys.modules, 'import nas loaded sqlalchemy'",
        "assert callable(nas.create_study) and 'sqlalchemy' in sys.modules",
    )


def test_import_nas_store_loads_no_torch_ray_or_streamlit() -> None:
    _python(
        "import sys, nas.store, nas.store.study, nas.store.readonly",
        "heavy = sorted({'torch', 'ray', 'streamlit'} & set(sys.modules))",
        "assert not heavy, f'import nas.store loaded {heavy}'",
    )


def test_the_storage_env_var_is_spelled_once() -> None:
    """``NAS_STORAGE`` is :data:`nas.store.url.ENV_VAR`; code elsewhere refers to that name."""
    spelled = []
    for folder in ("nas", "search_spaces", "predictors", "dashboard", "benchmarks"):
        for path in (REPO / folder).rglob("*.py"):
            if re.search(r"[\"']NAS_STORAGE[\"']", path.read_text(encoding="utf-8")):
                spelled.append(str(path.relative_to(REPO)))
    assert spelled == ["nas/store/url.py"]
