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


def test_import_nas_does_not_load_the_store() -> None:
    code = (
        "import sys, nas; "
        "assert 'sqlalchemy' not in sys.modules, 'import nas loaded sqlalchemy'; "
        "assert callable(nas.create_study) and 'sqlalchemy' in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)
