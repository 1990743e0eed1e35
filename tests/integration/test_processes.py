"""Stopping a child of `genop system up` stops what it started too, even a grandchild that
moved to a session of its own and ignores SIGTERM (killed after the grace period)."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import pytest

from genop_cli import processes
from tests.flows.helpers import wait_for

PARENT = """
import signal, subprocess, sys, time
subprocess.Popen([sys.executable, "-c", sys.argv[1]], start_new_session=True)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
time.sleep(600)
"""
STUBBORN_GRANDCHILD = """
import signal, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
time.sleep(600)
"""


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads the process tree from /proc")
def test_stop_ends_the_child_and_a_grandchild_in_its_own_session_that_ignores_sigterm():
    child = processes.start([sys.executable, "-c", PARENT, STUBBORN_GRANDCHILD])
    [grandchild] = wait_for(lambda: processes.descendants(child.pid), 120, "the grandchild to start")
    try:
        processes.stop(child, grace=3)
        assert child.poll() is not None
        wait_for(lambda: not processes.alive(grandchild), 60, "the grandchild to end")
    finally:
        for pid in (child.pid, grandchild):
            if processes.alive(pid):
                os.kill(pid, signal.SIGKILL)
