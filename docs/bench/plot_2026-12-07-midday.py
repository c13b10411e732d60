"""The plot of docs/benchmarks.md, 2026-12-07, midday: the JVMs' collector pauses under an open loop at 200/s before
and after (from their own logs, `-Xlog:gc`), and the interleaved open-loop runs of the A/B against the host's speed
at the time (a fixed Python loop timed just before each run: the lower, the faster the host).

.venv/bin/python docs/bench/plot_2026-12-07-midday.py   (from the checkout's root)
"""

import statistics

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

# Pause durations (ms) from each JVM's gc log while the system ran the open loop at 200/s and saturated loads.
PAUSES_TEXT = {
    "Cassandra\nmemtables on the heap,\n1 MiB regions (11 s)": ("101.4 62.7 27.6 33.6 0.6"),
    "Cassandra\nmemtables off the heap,\npause target 200 ms (10 min)": (
        "43.9 20.0 27.3 48.3 111.1 74.3 88.4 114.7 114.6"
    ),
    "Cassandra\noff the heap, 4 MiB regions,\npause target 25 ms (12 min)": (
        "39.6 21.5 11.6 31.6 22.7 14.8 29.2 39.0 29.0 27.5 19.1 15.3 37.1 26.0 19.9 16.7 12.7 19.2 37.7 "
        "16.6 23.2 24.3 20.7 18.9 23.3 45.2 24.8 21.8 16.4 32.0 27.7 18.6 16.2 54.6 35.5 23.4 13.0"
    ),
    "Kafka\nG1's defaults (18 s)": ("53.5 59.0"),
    "Kafka\npause target 20 ms, 4 MiB regions\n(11 min, make bench in it)": (
        "15.1 13.4 21.9 15.2 19.3 7.1 14.2 11.1 14.2 11.6 13.1 17.8 14.9 13.6 37.2 14.1 10.6 69.3 0.1 "
        "12.4 12.9 55.0 22.0 17.2 13.9 22.2 17.6 35.5 11.3 11.0 13.6 23.5 16.2 15.5 11.8 19.4 15.8 24.6 "
        "15.1 19.8 16.4 10.6 20.8 0.1 15.7 11.8 12.5 40.5 19.8 12.6 16.1"
    ),
}
PAUSES = {label: [float(v) for v in text.split()] for label, text in PAUSES_TEXT.items()}
# The A/B (`/tmp` abjvm.sh, 08:49-09:06): services and `cart run` restarted into each side, 60 s warm-up, then two
# open-loop runs at 200/s of 30 s: (side, host probe ms before the run, p50 ms, p99 ms)
RUNS = [
    ("before", 266, 41.2, 262.0), ("before", 338, 38.6, 198.0),
    ("after", 246, 11.5, 74.4), ("after", 258, 13.0, 100.0),
    ("before", 352, 27.9, 148.5), ("before", 255, 21.1, 112.8),
    ("after", 375, 55.7, 297.8), ("after", 557, 46.8, 232.6),
]  # fmt: skip


def main() -> None:
    fig, (left, right) = plt.subplots(1, 2, figsize=(16, 6), gridspec_kw={"width_ratios": [3, 2]})
    for i, values in enumerate(PAUSES.values()):
        left.scatter([i + (j % 7 - 3) * 0.04 for j in range(len(values))], values, s=14, alpha=0.7)
        left.hlines(statistics.median(values), i - 0.3, i + 0.3, colors="black")
    left.set_xticks(range(len(PAUSES)), list(PAUSES), fontsize=8)
    left.set_ylabel("pause, ms (line: median)")
    left.axhline(50, color="red", linestyle=":", linewidth=1)
    left.text(len(PAUSES) - 0.6, 52, "the p99 target", color="red", fontsize=8, ha="right")
    left.set_title("stop-the-world pauses of the JVMs under load")
    for side, colour in (("before", "tab:grey"), ("after", "tab:green")):
        rows = [r for r in RUNS if r[0] == side]
        right.scatter([r[1] for r in rows], [r[3] for r in rows], color=colour, label=f"{side}: p99", s=40)
        right.scatter([r[1] for r in rows], [r[2] for r in rows], color=colour, marker="x", label=f"{side}: p50")
    right.set_xlabel("the host's speed before the run: a fixed Python loop, ms (lower is faster)")
    right.set_ylabel("latency from the due time, ms")
    right.set_title("open loop at 200/s, 30 s, interleaved A/B")
    right.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig("docs/bench/2026-12-07-midday.png", dpi=90)


if __name__ == "__main__":
    main()
