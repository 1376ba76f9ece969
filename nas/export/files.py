"""File plumbing of a bundle: checksums, artifact URIs and all-or-nothing output directories.

A bundle is either complete or absent. It is built in a temporary sibling
directory (``DIR.tmp-XXXX``, same parent, hence same file system) and renamed
into place only when every file is written and every check has passed; any
error removes the temporary directory. ``force`` replaces an existing
bundle only at that last step, so a failed re-export leaves the old bundle
untouched.
"""

from __future__ import annotations

import contextlib
import hashlib
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
    """Refuse an existing output unless ``force`` (and never replace a plain file)."""
    if target.is_dir() and not force:
        raise ConfigError(
            f"output directory {target} already exists; choose another --out or pass --force to replace it"
        )
    if target.exists() and not target.is_dir():
        raise ConfigError(f"output path {target} exists and is not a directory; choose another --out")


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
        shutil.rmtree(old, ignore_errors=True)
    logger.info("bundle written to %s", target)


__all__ = ["check_target", "path_from_uri", "sha256_file", "staged_directory"]
