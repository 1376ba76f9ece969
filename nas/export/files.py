"""File plumbing of a bundle: checksums, artifact URIs and all-or-nothing output directories.

A bundle is either complete or absent. It is built in a temporary sibling
directory (``DIR.tmp-XXXX``, same parent, hence same file system) and renamed
into place only when every file is written and every check has passed; any
error removes the temporary directory. ``force`` replaces an existing
bundle only at that last step, so a failed re-export leaves the old bundle
untouched.

``force`` replaces only a previous bundle: a directory holding a bundle's
``card.json`` and nothing but bundle files. Any other directory is refused,
so a mistyped ``--out`` (``.``, a home or data directory, the store's own
folder) can never delete anything; the old bundle is removed file by file,
by name, after the new one is in place.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, urlparse
from urllib.request import url2pathname

from nas.core.errors import ConfigError
from nas.export.card import CARD_FILE, GENOTYPE_FILE, README_FILE
from nas.export.formats import FILES

#: Every file name a bundle may hold.
BUNDLE_FILE_NAMES = frozenset({CARD_FILE, GENOTYPE_FILE, README_FILE, *FILES.values()})
_MAX_CARD_BYTES = 10_000_000

logger = logging.getLogger(__name__)

_CHUNK = 1 << 20


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file, read in chunks (weights can be large)."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def path_from_uri(uri: str) -> Path:
    """The local path of a ``file://`` URI (artifacts are stored by URI); other schemes are refused."""
    parsed = urlparse(uri)
    if parsed.scheme != "file":
        raise ConfigError(f"artifact URI {uri!r} is not allowed; only local file:// URIs can be read")
    if parsed.netloc not in ("", "localhost"):
        raise ConfigError(f"artifact URI {uri!r} names host {parsed.netloc!r}; only local files can be read")
    return Path(url2pathname(unquote(parsed.path)))


def check_target(target: Path, *, force: bool) -> None:
    """Refuse an existing output unless ``force`` and it is a previous bundle (see the module docstring)."""
    if target.is_symlink():
        raise ConfigError(f"output path {target} is a symbolic link; choose another --out")
    if target.exists() and not target.is_dir():
        raise ConfigError(f"output path {target} exists and is not a directory; choose another --out")
    if not target.is_dir():
        return
    if not force:
        raise ConfigError(
            f"output directory {target} already exists; choose another --out or pass --force to replace "
            "a previous export bundle"
        )
    reason = _not_a_bundle(target)
    if reason is not None:
        raise ConfigError(
            f"--force refuses to replace {target}: {reason}; --force only replaces a directory written by "
            "nas export (its card.json and bundle files, nothing else). Choose another --out"
        )


def _not_a_bundle(folder: Path) -> str | None:
    """Why ``folder`` is not a previous export bundle, or ``None`` if it is one."""
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError as exc:
        return f"it cannot be listed ({exc})"
    foreign = [
        e.name for e in entries if e.name not in BUNDLE_FILE_NAMES or not e.is_file(follow_symlinks=False)
    ]
    if foreign:
        shown = ", ".join(repr(name) for name in foreign[:5]) + (", ..." if len(foreign) > 5 else "")
        return (
            f"it holds {len(foreign)} entr{'y' if len(foreign) == 1 else 'ies'} that no bundle has ({shown})"
        )
    card = folder / CARD_FILE
    if not any(e.name == CARD_FILE for e in entries):
        return f"it has no {CARD_FILE}, so it is not an export bundle"
    try:
        if card.stat().st_size > _MAX_CARD_BYTES:
            return f"its {CARD_FILE} is larger than {_MAX_CARD_BYTES} bytes"
        data = json.loads(card.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        return f"its {CARD_FILE} is not a readable model card ({exc})"
    if not isinstance(data, dict) or "bundle_version" not in data or not isinstance(data.get("files"), dict):
        return f"its {CARD_FILE} is not a model card (no bundle_version and files)"
    return None


def check_not_store(target: Path, storage_url: str) -> None:
    """Refuse an output that is, or contains, the store's SQLite file or its artifacts folder."""
    resolved = target.resolve()
    for what, path in _store_paths(storage_url):
        if path == resolved or resolved in path.parents:
            raise ConfigError(
                f"output directory {target} {'is' if path == resolved else 'contains'} the trial store's "
                f"{what} {path}; choose an --out outside it"
            )


def _store_paths(storage_url: str) -> list[tuple[str, Path]]:
    """The store's SQLite file (if any) and where its trial artifacts go (the store's one rule)."""
    from nas.store.url import artifacts_root, sqlite_file

    db = sqlite_file(storage_url)
    return [("artifacts folder", artifacts_root(storage_url))] + ([("SQLite file", db)] if db else [])


@contextlib.contextmanager
def staged_directory(target: str | os.PathLike[str], *, force: bool = False) -> Iterator[Path]:
    """Yield an empty temporary sibling of ``target``; publish it as ``target`` if the block succeeds."""
    target = Path(target).expanduser().absolute()
    check_target(target, force=force)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f"{target.name}.tmp-", dir=target.parent))
    try:
        yield staging
        _publish(staging, target, force=force)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _publish(staging: Path, target: Path, *, force: bool) -> None:
    """Rename ``staging`` to ``target``; with ``force`` the old bundle is moved aside first, then deleted."""
    check_target(target, force=force)  # again: another process may have written it meanwhile
    old: Path | None = None
    if target.exists():
        old = target.with_name(f"{target.name}.old-{secrets.token_hex(4)}")
        os.rename(target, old)
    try:
        os.rename(staging, target)
    except OSError:
        if old is not None:
            os.rename(old, target)  # put the previous bundle back
        raise
    if old is not None:
        _remove_bundle(old)
    logger.info("bundle written to %s", target)


def _remove_bundle(folder: Path) -> None:
    """Delete a replaced bundle's files by name; anything else found there is kept (and reported)."""
    for name in BUNDLE_FILE_NAMES:
        path = folder / name
        if path.is_file() and not path.is_symlink():
            path.unlink()
    try:
        folder.rmdir()
    except OSError:
        logger.warning("kept %s: files other than a bundle's appeared in it during the export", folder)


__all__ = [
    "BUNDLE_FILE_NAMES",
    "check_not_store",
    "check_target",
    "path_from_uri",
    "sha256_file",
    "staged_directory",
]
