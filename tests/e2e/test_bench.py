"""`cart bench` against the running test system, at tiny sizes: it runs every part, writes a JSON with every key,
the markdown and PNG plots; bad input and an absent API are one line and exit 1. Never asserts a timing: the
figures of a run this small on a shared machine mean nothing, only their presence does."""

from __future__ import annotations

import json
from pathlib import Path

from app.tools.bench.report import HEADLINE
from tests.e2e.system import Process, cart_cli

PNG = b"\x89PNG\r\n\x1a\n"
REQUIRED = [*HEADLINE, "machine"]
TINY = [
    "--members", "6", "--concurrency", "2", "--seconds", "2",
    "--rates", "5,10", "--level-seconds", "2", "--late-limit-s", "3", "--drain-s", "3",
    "--ceiling-seconds", "1", "--append-concurrencies", "1,2", "--fence-partitions", "2", "--fence-events", "5",
    "--http-concurrency", "2", "--projection-events", "70", "--projection-timeout-s", "120",
    "--read-delay-rate", "5", "--read-delay-seconds", "3", "--read-delay-members", "6", "--profile-seconds", "1",
]  # fmt: skip


def test_a_tiny_bench_writes_every_key_the_markdown_and_the_plots(system: dict[str, Process], tmp_path: Path) -> None:
    result = cart_cli({}, "bench", *TINY, "--out", str(tmp_path), timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    doc = json.loads((tmp_path / "latest.json").read_text())
    assert [key for key in REQUIRED if key not in doc] == []
    assert doc["failed_parts"] == [], doc["failed_parts"]
    for key in REQUIRED[:-1]:  # every figure is measured, or says why not
        assert doc[key] is not None or key in doc["null_reasons"], key
    assert "--journal-keyspace" in doc["null_reasons"]["rebuild_1m_events_s"]
    assert doc["machine"]["cores"] >= 1 and any(p["name"] == "api" for p in doc["machine"]["processes_watched"])
    assert set(doc["ratios"]) >= {"commands_per_s / append_ceiling_per_s", "commands_per_s / http_ceiling_per_s"}
    levels = doc["parts"]["open-loop"]["levels"]
    assert [level["offered_per_s"] for level in levels] == [5, 10]
    assert {"api", "worker"} <= set(doc["parts"]["profile"]["processes"])
    markdown = (tmp_path / "latest.md").read_text()
    for heading in ("### Ceilings", "### Saturation", "### Open loop", "### Read delay", "### Projections"):
        assert heading in markdown, heading
    plots = [Path(p) for p in doc["plots"]]
    assert len(plots) == 2 and all(p.read_bytes()[:8] == PNG for p in plots)
    assert "headline" in result.stdout and "wrote " in result.stdout


def test_bad_bench_parameters_and_an_absent_api_are_one_line_and_exit_1() -> None:
    for bad in (
        ["--members", "0"],
        ["--rates", "100,fast"],
        ["no-such-part"],
        ["--members", "2", "--concurrency", "3"],
    ):
        result = cart_cli({}, "bench", *bad)
        assert result.returncode == 1, bad
        assert result.stderr.startswith("error: ") and len(result.stderr.strip().splitlines()) == 1, result.stderr
    absent = cart_cli({}, "bench", "--api", "http://127.0.0.1:9", "saturation")
    assert absent.returncode == 1 and "is the system running?" in absent.stderr and "Traceback" not in absent.stderr
