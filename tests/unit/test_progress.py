"""The progress line (app/tools/progress.py): redrawn in place on a terminal, a plain line now and then elsewhere."""

from __future__ import annotations

import io

from app.tools.progress import ProgressLine


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_piped_progress_line_prints_at_most_one_line_per_interval_and_the_final_state_once() -> None:
    out, clock = io.StringIO(), Clock()
    line = ProgressLine("reading the journal", "members", out, interval_s=5.0, clock=clock, tty=False)
    for done in range(1, 1001):  # a thousand members over 12 seconds
        clock.now = 100.0 + done * 0.012
        line.update(done, 1000, f"{done * 40} events")
    line.close()
    line.close()  # closing twice shows nothing more

    lines = out.getvalue().splitlines()
    assert "\r" not in out.getvalue()
    assert len(lines) == 3  # at 5 s and 10 s, then the final state
    assert lines[0].startswith("reading the journal [#") and "417/1,000 members, 16680 events 5 s" in lines[0]
    assert lines[-1] == f"reading the journal [{'#' * 30}] 1,000/1,000 members, 40000 events 12 s"


def test_short_piped_work_prints_only_its_final_line() -> None:
    out, clock = io.StringIO(), Clock()
    with ProgressLine("loading the journal", "events", out, clock=clock, tty=False) as line:
        line.update(10)
        line.update(20)

    assert out.getvalue() == "loading the journal 20 events 0 s\n"


def test_on_a_terminal_the_line_is_redrawn_in_place() -> None:
    out, clock = io.StringIO(), Clock()
    line = ProgressLine("writing popular_items", "rows", out, redraw_s=0.1, clock=clock, tty=True)
    line.update(0, 200)
    clock.now += 0.05
    line.update(50, 200)  # too soon after the last redraw: not drawn
    clock.now += 0.1
    line.update(100, 200)
    line.close()

    text = out.getvalue()
    assert text.count("\r") == 3 and text.count("\n") == 1 and text.endswith("\n")
    draws = text.rstrip("\n").split("\r")[1:]
    assert draws[0].startswith("writing popular_items [....") and "0/200 rows" in draws[0]
    assert "100/200 rows" in draws[1] and "[" + "#" * 15 + "." * 15 + "]" in draws[1]
    assert "200/200" not in text  # the final state is the last update, not an invented total
    assert draws[2].startswith("writing popular_items") and "100/200 rows" in draws[2]


def test_a_shorter_line_on_a_terminal_covers_the_longer_one_before_it() -> None:
    out, clock = io.StringIO(), Clock()
    line = ProgressLine("loading", "events", out, clock=clock, tty=True)
    line.update(5, None, "a long detail that will go away")
    clock.now += 1
    line.update(6)

    first, second = out.getvalue().split("\r")[1:]
    assert len(second) == len(first) and second.rstrip() == "loading 6 events 1 s"


def test_work_that_never_reported_progress_prints_nothing() -> None:
    out = io.StringIO()
    with ProgressLine("loading the journal", "events", out, tty=True):
        pass

    assert out.getvalue() == ""
