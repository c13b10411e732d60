"""The plot of docs/benchmarks.md, 2026-12-07, morning: what one purchase costs the projection worker's Python at
each step before and after (timed side by side in the same minute), and the interleaved catch-up runs of the two
A/Bs (events/s, and the projection worker's CPU per event), each with its median.

.venv/bin/python docs/bench/plot_2026-12-07-morning.py   (from the checkout's root)
"""

import statistics

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

# us per purchase, before / after: decoding it; its two updates and public message; writing its two updates; the
# three owners reading them back; binding its popular item's two Cassandra rows
STEPS = {
    "decode the\npurchase": (21.2, 9.6),
    "2 updates +\npublic message": (9.1, 3.8),
    "write its\n2 updates": (2 * 1.16, 2 * 0.58),
    "3 owners read\nthem back": (3 * 4.70, 3 * 2.33),
    "bind a popular\nitem's 2 rows": (25.4, 11.4),
}
# (label, A runs, B runs, A worker ms/event, B worker ms/event)
AB = [
    (
        "Purchase, updates as arrays\n(7 pairs, 05:12-05:37)",
        [10277, 9716, 8369, 8118, 8519, 7666, 7652],
        [7930, 6982, 8940, 9109, 8733, 8742, 7439],
        [0.071, 0.076, 0.090, 0.091, 0.083, 0.096, 0.100],
        [0.082, 0.092, 0.078, 0.081, 0.083, 0.085, 0.096],
    ),
    (
        "bound values\n(06:04-06:16)",
        [16257, 13573, 11706],
        [16269, 14627, 14999, 11046],
        [0.048, 0.058, 0.066],
        [0.047, 0.052, 0.050, 0.066],
    ),
]


def main() -> None:
    fig, (steps, rates, cpu) = plt.subplots(1, 3, figsize=(16, 5), gridspec_kw={"width_ratios": [3, 2, 2]})
    xs = range(len(STEPS))
    steps.bar([x - 0.2 for x in xs], [b for b, _ in STEPS.values()], 0.4, label="before", color="#bbbbbb")
    steps.bar([x + 0.2 for x in xs], [a for _, a in STEPS.values()], 0.4, label="after", color="#3b75af")
    steps.set_xticks(list(xs), list(STEPS), fontsize=8)
    steps.set_ylabel("us of the projection worker's CPU per purchase")
    steps.set_title("one purchase through the query side, before / after")
    steps.legend()
    for axis, a_of, b_of, unit in ((rates, 1, 2, "events/s"), (cpu, 3, 4, "worker CPU ms per event")):
        for n, run in enumerate(AB):
            for side, runs, colour in (("A", run[a_of], "#bbbbbb"), ("B", run[b_of], "#3b75af")):
                x = n * 3 + (0 if side == "A" else 1)
                axis.scatter([x] * len(runs), runs, color=colour, zorder=3)
                axis.hlines(statistics.median(runs), x - 0.3, x + 0.3, color="black")
        axis.set_xticks([0, 1, 3, 4], ["A", "B", "A", "B"])
        for n, run in enumerate(AB):
            axis.text(n * 3 + 0.5, 1.01, run[0], transform=axis.get_xaxis_transform(), ha="center", fontsize=8)
        axis.set_ylabel(unit)
    rates.set_title("catch-up of 100,000 events, interleaved", pad=30)
    cpu.set_title("the projection worker's CPU per event", pad=30)
    fig.tight_layout()
    fig.savefig("docs/bench/2026-12-07-morning.png", dpi=110)


if __name__ == "__main__":
    main()
