"""The plot of docs/benchmarks.md, 2026-12-07, afternoon: every open-loop run at 200/s of the session (p99 from the
due time, against the 50 ms target), before and after the checkout's snapshot went, and every side-by-side run
against the peer (against the 3x target). The figures are the runs' own, copied from the section.

.venv/bin/python docs/bench/plot_2026-12-07-afternoon.py   (from the checkout's root)
"""

import statistics

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

# p99 ms at 200/s. Before: `cart bench open-loop --rates 200` at c6da533 (the A/Bs' default sides included).
BEFORE = [45.9, 40.1, 66.7, 53.2, 42.0, 59.8, 51.1, 76.6, 57.4, 44.5, 43.2, 40.2, 47.6, 49.2, 43.2, 49.0]
AFTER_TRACED = [44.4, 31.0, 37.8]  # olraw.py, 1,000 new members, at 8dddd59
AFTER_MAKE_BENCH = [29.0, 146.4, 30.7, 42.2]  # make bench at 8dddd59 (11:43) and 1eb9b24 (12:21, 12:27, 12:33)
RATIOS = [4.09, 3.71, 3.12, 3.29, 4.41, 2.51]  # side_by_side.sh at 11:39-11:42 and 12:19-12:21
CPU_RATIOS = [0.26, 0.28, 0.32, 0.29, 0.25, 0.38]


def main() -> None:
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5), gridspec_kw={"width_ratios": [3, 2]})
    groups = [
        ("before (c6da533)\n16 open-loop runs", BEFORE, "tab:gray"),
        ("after, traced\n(3 runs)", AFTER_TRACED, "tab:blue"),
        ("after, make bench\n(4 runs)", AFTER_MAKE_BENCH, "tab:green"),
    ]
    for i, (_, values, colour) in enumerate(groups):
        left.scatter([i] * len(values), values, color=colour, alpha=0.8, zorder=3)
        left.hlines(statistics.median(values), i - 0.25, i + 0.25, color=colour, linewidth=3, zorder=2)
        left.annotate(f"median {statistics.median(values):.0f}", (i + 0.28, statistics.median(values)), fontsize=9)
    left.axhline(50, color="tab:red", linestyle="--", label="target: 50 ms")
    left.set_xticks(range(len(groups)), [g[0] for g in groups])
    left.set_yscale("log")
    left.set_ylabel("p99 ms from the due time, open loop at 200/s")
    left.set_title("p99 at 200/s, every run of the session (host probe 50-72 ms: a fast host)")
    left.legend(loc="lower left")

    x = range(1, len(RATIOS) + 1)
    right.bar([i - 0.2 for i in x], RATIOS, width=0.4, color="tab:green", label="commands/s, system / peer")
    right.bar([i + 0.2 for i in x], CPU_RATIOS, width=0.4, color="tab:orange", label="CPU per command, system / peer")
    right.axhline(3, color="tab:green", linestyle="--", label="target: at least 3x")
    right.axhline(0.5, color="tab:orange", linestyle="--", label="target: at most 0.5x")
    right.set_xticks(list(x), [f"run {i}" for i in x])
    right.set_title("side by side with the peer (11:39-12:21)")
    right.legend(loc="upper right", fontsize=8)
    right.set_ylim(0, 5.5)
    fig.suptitle("2026-12-07, afternoon")
    fig.tight_layout()
    fig.savefig("docs/bench/2026-12-07-afternoon.png", dpi=100)


if __name__ == "__main__":
    main()
