"""The catch-up plot of docs/benchmarks.md, 2026-12-03, from the figures in its table.

.venv/bin/python docs/bench/plot_2026-12-03-catch-up.py   (from the checkout's root)
"""

import statistics

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

# (label, events/s of each run, projection worker CPU ms per event of each run)
GROUPS = [
    ("A: 1 update/msg\n0.2 s wait", [867, 943, 949], [0.959, 0.872, 0.895]),
    ("A: many/msg\n0.2 s wait", [1319, 1068, 1032], [0.581, 0.71, 0.753]),
    ("B: many/msg\n0.05 s wait", [899, 1088, 777], [0.946, 0.77, 1.06]),
    ("B: + 0.25 s\nwhen behind (now)", [1204, 1024, 978], [0.648, 0.719, 0.78]),
]
COLOURS = ["#bbb", "#4a7", "#bbb", "#4a7"]
PANELS = [(1, "catch-up, events/s (higher is better)"), (2, "query worker CPU ms per event (lower is better)")]

fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
for ax, (column, title) in zip(axes, PANELS, strict=True):
    for i, group in enumerate(GROUPS):
        runs = group[column]
        ax.bar(i, statistics.median(runs), color=COLOURS[i], width=0.6)
        ax.scatter([i] * len(runs), runs, color="k", s=12, zorder=3)
    ax.set_xticks(range(len(GROUPS)), [g[0] for g in GROUPS], fontsize=8)
    ax.set_title(title, fontsize=10)
fig.suptitle(
    "A, B: two rounds of interleaved runs. cart bench projections --projection-events 30000, "
    "3 runs each (bars: medians), 2026-12-03",
    fontsize=10,
)
fig.tight_layout()
fig.savefig("docs/bench/2026-12-03-catch-up.png", dpi=110)
