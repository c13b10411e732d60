"""A service started with a timer slack runs with it, in the same process, and so do the threads it starts
(app.tools.services.with_timer_slack; the running Cassandra is checked in tests/integration/test_services_smoke.py)."""

from __future__ import annotations

import subprocess
import sys

from app.tools.services import with_timer_slack

THREAD_SLACK = (
    "import os, threading\n"
    "print(open('/proc/self/timerslack_ns').read().strip(), os.getpid())\n"
    "def mine(): print(open(f'/proc/{threading.get_native_id()}/timerslack_ns').read().strip())\n"
    "t = threading.Thread(target=mine)\n"
    "t.start(); t.join()\n"
)


def test_the_command_runs_in_place_with_the_slack_and_its_threads_inherit_it() -> None:
    process = subprocess.Popen(
        with_timer_slack([sys.executable, "-c", THREAD_SLACK], 750_000), stdout=subprocess.PIPE, text=True
    )
    out, _ = process.communicate(timeout=30)
    main, thread = out.split("\n")[:2]
    slack, pid = main.split()
    assert (slack, thread) == ("750000", "750000")
    assert int(pid) == process.pid  # executed in place: the pid file names the service itself


def test_no_slack_leaves_the_command_as_it_is() -> None:
    assert with_timer_slack(["java", "-version"], 0) == ["java", "-version"]
