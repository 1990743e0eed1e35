"""The children of `genop system up`, each with everything it starts.

Each child is started in its own session (so its own process group): a Ctrl-C in the
terminal reaches `genop system up` alone, which then stops the children in order. The
process serving the deployments starts one ``prefect.engine`` process per flow run,
and Prefect may put those in sessions of their own; so a stop signals the child's whole
group *and* every process descending from it (found in /proc before the first signal),
waits for them, and kills what is left.

A process is known by its pid *and* its start time, so a pid the kernel has handed to an
unrelated process after ours ended is never signalled.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

PROC = Path("/proc")


PR_SET_PDEATHSIG = 1


def _prctl() -> Any:
    """libc's prctl, looked up in the parent (after a fork only async-signal-safe work)."""
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


def _end_with_parent(prctl: Any, parent: int) -> Callable[[], None]:
    """Run in the child before it starts: SIGTERM it when `genop system up` dies, even by
    SIGKILL (Linux only); if the parent is already gone, the child ends at once."""
    def arm() -> None:
        if prctl is not None:
            prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent:
            os._exit(1)
    return arm


def start(command: Sequence[str], **options: Any) -> subprocess.Popen[bytes]:
    arm = _end_with_parent(_prctl(), os.getpid()) if sys.platform == "linux" else None
    return subprocess.Popen(list(command), start_new_session=True, preexec_fn=arm, **options)


def _stat(pid: int) -> tuple[str, int, int, int] | None:
    """(state, parent pid, session id, start time) of a process; None when it is gone."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()
    return fields[0], int(fields[1]), int(fields[3]), int(fields[19])


def _started(pid: int) -> int | None:
    stat = _stat(pid)
    return None if stat is None else stat[3]


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


def _same(pid: int, started: int | None) -> bool:
    """``pid`` is still the process that was seen (not a later one given the same number); a
    process whose start could not be read was already gone when it was seen."""
    return started is not None and _started(pid) == started


def _signal(tree: dict[int, int | None], child: subprocess.Popen[bytes], signum: int) -> None:
    if child.returncode is None or in_session(child.pid):  # a reaped child's group id may be reused
        try:
            os.killpg(child.pid, signum)
        except (ProcessLookupError, PermissionError):
            pass
    for pid, started in tree.items():
        if not _same(pid, started):
            continue
        try:
            os.kill(pid, signum)
        except (ProcessLookupError, PermissionError):
            pass


def _known(pids: Iterable[int], tree: dict[int, int | None]) -> None:
    for pid in pids:
        if pid not in tree:
            tree[pid] = _started(pid)


def stop(child: subprocess.Popen[bytes], *, grace: float = 20.0) -> None:
    """Terminate a child started by ``start`` with its group and descendants; kill after ``grace``."""
    tree: dict[int, int | None] = {}
    _known([child.pid, *descendants(child.pid), *in_session(child.pid)], tree)

    def living() -> bool:
        return any(alive(pid) and _same(pid, started) for pid, started in tree.items())

    if child.poll() is None or living():
        _signal(tree, child, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        child.poll()  # reaps it, so it does not linger as a zombie
        _known(in_session(child.pid), tree)
        if not living():
            break
        time.sleep(0.2)
    else:
        _known(in_session(child.pid), tree)
        _signal(tree, child, signal.SIGKILL)
    try:
        child.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        pass
