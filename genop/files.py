"""Files genop writes: whole (readers never see half of one) and private.

Plans, quarantined files, rejects and letters carry CPR numbers and health data, so
every file genop writes is readable by its owner only (0600) and every folder it makes
is 0700 — by the process umask set at each entry point (:func:`use_private_umask`) and,
where code may run under someone else's umask, by explicit modes as well.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

PRIVATE_UMASK = 0o077
PRIVATE_FILE_MODE = 0o600
PRIVATE_DIR_MODE = 0o700


def use_private_umask() -> int:
    """Called first by every entry point (the ``genop`` command, the served flows, the mail
    sink); child processes inherit it. Returns the previous umask."""
    return os.umask(PRIVATE_UMASK)


def private_dir(path: Path) -> Path:
    """Make ``path`` (and missing parents) with mode 0700; an existing folder is tightened."""
    path.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
    if path.stat().st_mode & 0o777 != PRIVATE_DIR_MODE:
        os.chmod(path, PRIVATE_DIR_MODE)
    return path


def make_private(path: Path) -> None:
    """A file that arrived with someone else's mode (a hospital's upload, a copy) becomes 0600."""
    os.chmod(path, PRIVATE_FILE_MODE)


def open_new_private(path: Path, *, encoding: str = "utf-8", newline: str | None = None):  # noqa: ANN201
    """Open a file that must not exist yet for writing text, with mode 0600 from the start."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
    return os.fdopen(fd, "w", encoding=encoding, newline=newline)


def append_private(path: Path, text: str) -> None:
    """Append to a log file kept private (mode 0600 even if it was created looser)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, PRIVATE_FILE_MODE)
    with os.fdopen(fd, "a", encoding="utf-8", errors="backslashreplace") as handle:
        handle.write(text)
    make_private(path)


def write_atomically(path: Path, content: bytes, *, staging: Path | None = None) -> None:
    """Write ``content`` to a unique temporary file in ``staging`` (default: beside ``path``;
    it must be on the same filesystem), flush it to disk, then rename it onto ``path``.
    The file is 0600 (``mkstemp`` creates it so) and new folders are 0700."""
    folder = staging or path.parent
    for needed in (folder, path.parent):
        if not needed.exists():  # a folder someone else made (a pickup folder) keeps its mode
            private_dir(needed)
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(content)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
