"""The children of `genop system up`, each with everything it starts.

Each child is started in its own session (so its own process group): a Ctrl-C in the
terminal reaches `genop system up` alone, which then stops the children in order. The
process serving the deployments starts one ``prefect.engine`` process per flow run,
and Prefect may put those in sessions of their own; so a stop signals the child's whole
group *and* every process descending from it (found in /proc before the first signal),
waits for them, and kills what is left.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

PROC = Path("/proc")


def start(command: Sequence[str], **options: Any) -> subprocess.Popen[bytes]:
    return subprocess.Popen(list(command), start_new_session=True, **options)


def _stat(pid: int) -> tuple[str, int, int] | None:
    """(state, parent pid, session id) of a process; None when it is gone."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()
    return fields[0], int(fields[1]), int(fields[3])


def _all_pids() -> list[int]:
    try:
        return [int(entry.name) for entry in PROC.iterdir() if entry.name.isdigit()]
    except OSError:
        return []


def descendants(pid: int) -> list[int]:
    """Every living process below ``pid`` (children, grandchildren, …); [] without /proc."""
    parents: dict[int, list[int]] = {}
    for other in _all_pids():
        stat = _stat(other)
        if stat is not None:
            parents.setdefault(stat[1], []).append(other)
    found, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def in_session(session_id: int) -> list[int]:
    """Living processes of a session (a child started by ``start`` leads its own)."""
    return [pid for pid in _all_pids() if (stat := _stat(pid)) is not None and stat[2] == session_id
            and stat[0] != "Z"]


def alive(pid: int) -> bool:
    stat = _stat(pid)
    if stat is not None:
        return stat[0] != "Z"
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not PROC.exists()


def _signal(pids: Iterable[int], child: subprocess.Popen[bytes], signum: int) -> None:
    try:
        os.killpg(child.pid, signum)
    except (ProcessLookupError, PermissionError):
        pass
    for pid in pids:
        try:
            os.kill(pid, signum)
        except (ProcessLookupError, PermissionError):
            pass


def stop(child: subprocess.Popen[bytes], *, grace: float = 20.0) -> None:
    """Terminate a child started by ``start`` with its group and descendants; kill after ``grace``."""
    tree = [child.pid, *descendants(child.pid), *in_session(child.pid)]
    if child.poll() is None or any(alive(pid) for pid in tree):
        _signal(tree, child, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        child.poll()  # reaps it, so it does not linger as a zombie
        tree += [pid for pid in in_session(child.pid) if pid not in tree]
        if not any(alive(pid) for pid in tree):
            break
        time.sleep(0.2)
    else:
        _signal([*tree, *in_session(child.pid)], child, signal.SIGKILL)
    try:
        child.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        pass
