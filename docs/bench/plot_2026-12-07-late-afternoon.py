"""The plot of docs/benchmarks.md, 2026-12-07, late afternoon: the median latency of each second of a 200/s open-loop
level with 400 new members (their first commands fill the first two seconds), before and after a load became one
round trip; and the p99 at 200/s of the session's runs, against the 50 ms target. The figures are the runs' own,
copied from the section.

.venv/bin/python docs/bench/plot_2026-12-07-late-afternoon.py   (from the checkout's root)
"""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

# p50 ms of each second (from the due time), /tmp olraw.py at 200/s for 30 s, MEMBERS=400, `cart run` restarted.
BEFORE = [  # c79da8c's load (two reads one after the other)
    [20.9, 21.8, 8.4, 8.6, 8.5, 8.4, 9.1, 12.0, 9.2, 9.8, 15.5, 21.5, 11.9, 10.1, 11.0,
     8.3, 9.3, 9.4, 9.1, 8.7, 8.4, 8.5, 9.7, 12.4, 8.4, 8.3, 8.0, 8.2, 10.0, 8.4],
    [36.5, 21.0, 9.3, 7.4, 7.2, 8.3, 7.2, 9.1, 14.0, 13.7, 10.5, 16.7, 12.9, 8.6, 8.5,
     17.9, 9.1, 10.0, 9.9, 8.2, 10.0, 13.1, 14.5, 20.5, 16.3, 9.6, 9.4, 9.9, 9.3, 10.5],
    [21.7, 19.1, 8.7, 8.3, 9.3, 10.2, 10.6, 10.2, 8.7, 8.5, 19.9, 18.9, 14.1, 11.2, 11.7,
     11.0, 10.1, 7.1, 7.6, 7.1, 7.9, 7.7, 8.8, 9.6, 7.0, 6.8, 6.5, 6.4, 7.2, 6.5],
]  # fmt: skip
AFTER = [  # 771dd96 (one round trip)
    [11.4, 12.9, 8.3, 8.1, 8.5, 10.2, 9.5, 8.3, 8.5, 8.4, 12.9, 10.1, 8.0, 6.6, 7.3,
     7.2, 7.0, 6.9, 7.3, 6.7, 6.9, 6.7, 9.1, 8.5, 9.5, 8.3, 7.9, 7.7, 7.7, 8.9],
    [13.4, 10.3, 9.2, 9.7, 10.2, 9.4, 8.2, 9.0, 9.6, 10.8, 31.5, 18.8, 13.4, 11.3, 10.0,
     10.3, 10.6, 9.1, 8.8, 9.2, 10.6, 10.5, 10.5, 14.2, 7.0, 7.1, 6.7, 6.5, 7.2, 6.5],
    [9.6, 14.0, 8.2, 8.2, 7.9, 7.2, 6.8, 8.3, 7.7, 7.2, 8.5, 17.2, 8.8, 8.5, 8.2,
     8.0, 9.5, 9.1, 8.0, 8.6, 8.7, 13.0, 13.8, 13.0, 10.4, 9.4, 9.1, 8.5, 8.3, 8.9],
]  # fmt: skip
# p99 ms at 200/s of the session's runs: olraw.py with 1,000 new members (before: c79da8c, after: 771dd96);
# `cart bench open-loop --rates 200`, interleaved A/B; `make bench` at 771dd96 (14:52) and 633aab2 (15:10-15:28).
P99 = {
    "olraw.py\nbefore": [94.9, 45.3, 49.0, 30.9],
    "olraw.py\nafter": [28.2, 32.1, 31.7],
    "bench\nopen-loop\nA/B before": [40.2, 40.5],
    "bench\nopen-loop\nA/B after": [37.8, 51.5],
    "make bench\n(after)": [56.9, 60.7, 53.8, 49.6],
}


def main() -> None:
    fig, (left, right) = plt.subplots(1, 2, figsize=(14, 5), gridspec_kw={"width_ratios": [3, 2]})
    for runs, colour, label in (
        (BEFORE, "tab:gray", "before: snapshots, then events"),
        (AFTER, "tab:blue", "after: both at once"),
    ):
        for i, run in enumerate(runs):
            left.plot(range(len(run)), run, color=colour, alpha=0.8, label=label if i == 0 else None)
    left.axvspan(-0.5, 1.5, color="tab:orange", alpha=0.12, label="every member's first command")
    left.set_xlabel("second of the level")
    left.set_ylabel("p50 ms from the due time")
    left.set_title("200/s, 400 new members: the median of each second")
    left.legend(loc="upper right")
    left.set_ylim(0, 40)
    for i, (label, values) in enumerate(P99.items()):
        right.scatter(
            [i] * len(values), values, color="tab:blue" if "after" in label or "make" in label else "tab:gray"
        )
    right.axhline(50, color="tab:red", linestyle="--", label="target: 50 ms")
    right.set_xticks(range(len(P99)), list(P99), fontsize=8)
    right.set_ylabel("p99 ms at 200/s")
    right.set_title("p99 at 200/s, this session's runs")
    right.legend()
    fig.tight_layout()
    fig.savefig("docs/bench/2026-12-07-late-afternoon.png", dpi=110)


if __name__ == "__main__":
    main()
