"""`cart rebuild` and `cart verify` timed as an operator runs them, against a keyspace (and database) given with
`--journal-keyspace`, meant to hold a journal of 1,000,000 events (a bulk loader fills one; the bench does not).

Rebuild rewrites that keyspace's read models, so it is only ever run against the keyspace named: every read
model is rebuilt by one `cart rebuild all` (forced: the keyspace has no workers), then all are verified against the
journal.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from typing import Any

from app.settings import PROJECT_ROOT
from app.tools.progress import Progress

VERIFY_SUMMARY = re.compile(r"\d+ difference\(s\) in ")
"""The last line `cart verify` prints once it has compared every read model (app/tools/cli.py)."""


def timed_cart(args: list[str], env: dict[str, str], timeout_s: float) -> dict[str, Any]:
    """Run `cart ARGS` (this checkout's code) and time it: seconds, exit code, its last line of output."""
    started = time.monotonic()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "app.tools.cli", *args],
            cwd=PROJECT_ROOT,
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            timeout=timeout_s,
        )
    except subprocess.TimeoutExpired:
        return {"seconds": None, "exit": None, "said": f"did not finish within {timeout_s:g} s"}
    # Its result is the last line on stdout (rows rebuilt, differences found); stderr has the progress bar or the error.
    lines = done.stdout.strip().splitlines() or done.stderr.strip().splitlines()
    return {
        "seconds": round(time.monotonic() - started, 2),
        "exit": done.returncode,
        "said": lines[-1] if lines else "",
    }


def read_the_whole_journal(verify: dict[str, Any]) -> bool:
    """Whether a timed `cart verify` went through the journal, so that its time counts: it exits 0 with no
    difference and 1 with some (having read everything), but also 1 with an `error: ...` having read nothing (a
    missing database: once timed at 0.8 s and reported as the verify of a million events)."""
    return verify["exit"] == 0 or (verify["exit"] == 1 and VERIFY_SUMMARY.match(verify["said"]) is not None)


def rebuild_and_verify(keyspace: str, database: str, timeout_s: float, progress: Progress) -> dict[str, Any]:
    env = {"CART_CASSANDRA_KEYSPACE": keyspace, "CART_POSTGRES_DATABASE": database}
    # Every read model, as an operator repairs them all: one read of the journal, then each model's rows.
    progress.update(f"rebuild all from {keyspace}", force=True)
    rebuilt = timed_cart(["rebuild", "all", "--force"], env, timeout_s)
    progress.note(f"  rebuild all: {rebuilt['seconds']} s ({rebuilt['said']})")
    progress.update(f"verify {keyspace}", force=True)
    verify = timed_cart(["verify"], env, timeout_s)
    progress.note(f"  verify: {verify['seconds']} s ({verify['said']})")
    return {
        "rebuild_1m_events_s": rebuilt["seconds"] if rebuilt["exit"] == 0 else None,
        "verify_1m_events_s": verify["seconds"] if read_the_whole_journal(verify) else None,
        "journal_keyspace": keyspace,
        "journal_database": database,
        "rebuild": {"all": rebuilt},
        "verify": verify,
    }
