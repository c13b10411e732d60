"""The plot of docs/benchmarks.md, 2026-12-06, late evening: the catch-up of a 100,000-event backlog
(`cart bench projections --projection-events 100000`, one projection worker), interleaved pairs: before (A, HEAD of
the time) and after (B, the working tree), events/s and the projection worker's CPU per event; and the change tried
and not kept.

.venv/bin/python docs/bench/plot_2026-12-06-late-evening.py   (from the checkout's root)
"""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

# (title, [(A events/s, A worker ms/event)], [(B ...)]) in the order run, A then B each round
PAIRS = [
    (
        "changelog flushed at commits\n(6879c8b -> working tree)",
        [(5704, 0.134), (7032, 0.108), (4878, 0.159)],
        [(6046, 0.129), (6942, 0.116), (5631, 0.145)],
    ),
    (
        "and the tables' own changelog writes\n(6879c8b -> 4807c5d)",
        [(5881, 0.133), (5833, 0.131), (5739, 0.132)],
        [(5707, 0.135), (7381, 0.106), (7116, 0.109)],
    ),
    (
        "not kept: purchases not waiting\nfor its deliveries (4807c5d -> tree)",
        [(8307, 0.093), (7219, 0.109), (7474, 0.107)],
        [(7442, 0.103), (7203, 0.108), (7583, 0.100)],
    ),
]

fig, axes = plt.subplots(2, len(PAIRS), figsize=(15, 7), sharey="row")
for col, (title, a, b) in enumerate(PAIRS):
    for row, index in enumerate((0, 1)):
        ax = axes[row][col]
        for runs, color, x0 in ((a, "#9e9e9e", 0), (b, "#1f77b4", 1)):
            values = [r[index] for r in runs]
            ax.scatter([x0] * len(values), values, color=color, s=40, zorder=3)
            ax.hlines(sorted(values)[len(values) // 2], x0 - 0.2, x0 + 0.2, color=color, lw=3)
        ax.set_xticks([0, 1], ["before", "after"])
        ax.set_xlim(-0.6, 1.6)
        if row == 0:
            ax.set_title(title, fontsize=10)
        if col == 0:
            ax.set_ylabel(["catch-up, events/s", "projection worker, ms CPU per event"][row])
        ax.grid(axis="y", alpha=0.3)
fig.suptitle("Catch-up of 100,000 cart events, one projection worker; interleaved pairs (bar: median of three)")
fig.tight_layout()
fig.savefig("docs/bench/2026-12-06-late-evening-catch-up.png", dpi=110)
print("wrote docs/bench/2026-12-06-late-evening-catch-up.png")
