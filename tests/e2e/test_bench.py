"""`cart bench` against the running system: it reports what it measured and plots it; bad input is one line."""

from __future__ import annotations

import re
from pathlib import Path

from tests.e2e.system import Process, cart_cli


def test_a_small_bench_reports_latencies_and_writes_its_plot(system: dict[str, Process], tmp_path: Path) -> None:
    plot = tmp_path / "bench.png"
    result = cart_cli({}, "bench", "--members", "3", "--rounds", "2", "--concurrency", "3", "--plot", str(plot))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "12 commands in" in result.stdout and "0 error(s)" in result.stdout  # 3 members x 2 x (add, checkout)
    for kind in ("add", "checkout", "visible"):
        assert re.search(rf"^  {kind} +n= +\d+  median +[\d.]+ ms  p95", result.stdout, re.MULTILINE), kind
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bad_bench_parameters_and_an_absent_api_are_one_line_and_exit_1() -> None:
    bad = cart_cli({}, "bench", "--members", "0")
    assert bad.returncode == 1 and bad.stderr.startswith("error: --members") and "Traceback" not in bad.stderr
    absent = cart_cli({}, "bench", "--api", "http://127.0.0.1:9", "--members", "1")
    assert absent.returncode == 1 and "is the system running?" in absent.stderr and "Traceback" not in absent.stderr
