"""Stopping a child of `genop system up` stops what it started too, even a grandchild that
moved to a session of its own and ignores SIGTERM (killed after the grace period)."""

from __future__ import annotations

import os
import signal
import subprocess
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


def test_a_pid_handed_to_another_process_after_ours_ended_is_never_signalled():
    """Stop knows a process by pid and start time: a reused pid (here: a living process
    whose start time differs from the recorded one) is left alone."""
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    ended = processes.start([sys.executable, "-c", "pass"])
    ended.wait(timeout=60)
    try:
        recorded = processes._started(bystander.pid)
        assert recorded is not None
        processes._signal({bystander.pid: recorded + 1}, ended, signal.SIGKILL)
        assert bystander.poll() is None and processes.alive(bystander.pid)
        processes._signal({bystander.pid: recorded}, ended, signal.SIGKILL)
        assert bystander.wait(timeout=60) == -signal.SIGKILL
    finally:
        bystander.kill()
        bystander.wait()


SYSTEM_UP_STAND_IN = """
import sys, time
from genop_cli import processes
child = processes.start([sys.executable, "-c", "import time; time.sleep(600)"])
print(child.pid, flush=True)
time.sleep(600)
"""


@pytest.mark.skipif(sys.platform != "linux", reason="PR_SET_PDEATHSIG is Linux's")
def test_a_child_ends_when_genop_system_up_is_killed_with_sigkill():
    parent = subprocess.Popen([sys.executable, "-c", SYSTEM_UP_STAND_IN], stdout=subprocess.PIPE, text=True)
    try:
        child_pid = int(parent.stdout.readline())
        assert processes.alive(child_pid)
        parent.kill()
        parent.wait(timeout=60)
        wait_for(lambda: not processes.alive(child_pid), 60, "the child to end with its parent")
    finally:
        parent.kill()
