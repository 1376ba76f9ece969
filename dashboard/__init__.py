"""The Streamlit dashboard: watch searches, inspect trials and architectures, compare, export.

Start it with ``nas dashboard`` (a thin wrapper over ``streamlit run`` on
:data:`APP_PATH`). Streamlit is imported only by the app's modules, never by
this package's ``__init__``, so ``nas`` can locate the app without loading it.
All database access goes through :mod:`nas.store.readonly`: read-only
connections that never block a running search.
"""

from __future__ import annotations

from pathlib import Path

#: The Streamlit script (``streamlit run APP_PATH``).
APP_PATH = Path(__file__).with_name("app.py")

__all__ = ["APP_PATH"]
