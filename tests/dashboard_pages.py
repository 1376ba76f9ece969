"""Opening a dashboard page in Streamlit's AppTest, shared by the dashboard tests."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from dashboard import APP_PATH


def open_page(url: str, monkeypatch: pytest.MonkeyPatch, **params: str) -> AppTest:
    """Run the real app on the store at ``url`` with ``params`` as query parameters; no exception allowed."""
    monkeypatch.setenv("NAS_STORAGE", url)
    app = AppTest.from_file(str(APP_PATH), default_timeout=90)
    app.query_params.update(params)
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    return app
