"""``nas dashboard``: start the Streamlit dashboard on a trial store (a thin wrapper over ``streamlit run``).

The store is chosen by the same rule as everywhere (``--storage``, else
``$NAS_STORAGE``, else ``sqlite:///nas.db``) and handed to the app through
``$NAS_STORAGE``. The server binds to 127.0.0.1 unless ``--host`` says
otherwise, runs headless, sends no usage statistics and does not watch files.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import click

from nas.cli.options import storage_option
from nas.cli.root import main
from nas.core.errors import ConfigError, require


def app_path() -> Path:
    """The dashboard's Streamlit script (installed package, else this source checkout)."""
    spec = importlib.util.find_spec("dashboard")
    if spec is not None and spec.origin:
        candidate = Path(spec.origin).with_name("app.py")
    else:
        candidate = Path(__file__).resolve().parents[2] / "dashboard" / "app.py"
    if not candidate.is_file():
        raise ConfigError(
            f"the dashboard app is not installed (looked for {candidate}); "
            "install it with `pip install 'nas-platform[dashboard]'`"
        )
    return candidate


def streamlit_command(port: int, host: str) -> list[str]:
    """The ``streamlit run`` command line for the dashboard."""
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(app_path()),
        "--server.port",
        str(port),
        "--server.address",
        host,
        "--server.headless",
        "true",
        "--server.fileWatcherType",
        "none",
        "--server.runOnSave",
        "false",
        "--browser.gatherUsageStats",
        "false",
        "--client.showErrorDetails",
        "none",
        "--client.toolbarMode",
        "viewer",
        "--global.developmentMode",
        "false",
    ]


@main.command("dashboard")
@storage_option()
@click.option(
    "--port", type=click.IntRange(1, 65535), default=8501, show_default=True, help="Port to serve on."
)
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to bind; 0.0.0.0 exposes the dashboard to the network.",
)
def dashboard_command(storage: str | None, port: int, host: str) -> None:
    """Start the web dashboard: studies, trials, architectures, comparisons, export."""
    from nas.store import ENV_VAR, mask_url, parse_storage_url, resolve_storage_url

    url = resolve_storage_url(storage)
    parse_storage_url(url)  # a typo fails here with the allowed schemes, not inside the app
    require("streamlit", "dashboard")
    command = streamlit_command(port, host)
    click.echo(f"dashboard on http://{host}:{port} reading {mask_url(url)} (Ctrl+C stops it)", err=True)
    sys.stdout.flush()
    sys.stderr.flush()
    # Replace this process: signals reach the server directly and there is no wrapper to orphan.
    os.execve(sys.executable, command, {**os.environ, ENV_VAR: url})
