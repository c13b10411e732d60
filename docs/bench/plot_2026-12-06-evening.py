"""The plot of docs/benchmarks.md, 2026-12-06, evening: the command worker's full collections before and after
(`/tmp/h/gcrun.sh`, a probe's log), the commands during a compaction by compaction throughput (`nodetool compact
shopping_cart snapshots` 9 s into a 30 s open loop at 200/s), the commands at 200/s by the query worker's niceness
(three runs each, interleaved), and `make bench`'s p99 at 200/s over the day.

.venv/bin/python docs/bench/plot_2026-12-06-evening.py   (from the checkout's root)
"""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

# (label, full collections over 20 ms, their sum in ms) in ~2 min of load
COLLECTIONS = [("before\n(eaed390)", 19, 2076), ("outcomes\nas tuples", 23, 1433), ("and full\npasses rarer", 2, 149)]
# compaction throughput -> (p50, p99) ms of the commands answered while the compaction ran, one pair per run
COMPACTION = {"64 MiB/s": [(150, 679), (69, 270)], "16 MiB/s": [(48, 239)], "8 MiB/s": [(23, 95), (27, 222)]}
# query worker's niceness -> per run: (checkouts' p50, checkouts' p99, the other commands' p99) ms
NICENESS = {0: [(51, 232, 62), (74, 218, 65), (149, 481, 156)], 10: [(25, 102, 67), (37, 217, 92), (23, 169, 56)]}
BENCH_P99_AT_200 = [("14:52\nc655e3e", 166), ("15:59\n5bceb53", 356), ("17:53\nthis evening", 97)]

fig, axes = plt.subplots(1, 4, figsize=(17, 4.6))
ax = axes[0]
labels = [c[0] for c in COLLECTIONS]
ax.bar(labels, [c[2] for c in COLLECTIONS], color=["#d62728", "#ff7f0e", "#2ca02c"])
for i, (_, n, ms) in enumerate(COLLECTIONS):
    ax.text(i, ms + 30, f"{n} pauses", ha="center", fontsize=9)
ax.set_ylabel("ms the command worker stood still (sum)")
ax.set_title("full collections > 20 ms, ~2 min of load")

ax = axes[1]
for i, runs in enumerate(COMPACTION.values()):
    for j, (p50, p99) in enumerate(runs):
        x = i + (j - (len(runs) - 1) / 2) * 0.25
        ax.bar(x, p99, width=0.22, color="#9ecae1", label="p99" if i == j == 0 else None)
        ax.bar(x, p50, width=0.22, color="#08519c", label="p50" if i == j == 0 else None)
ax.set_xticks(range(len(COMPACTION)), list(COMPACTION))
ax.set_ylabel("ms, commands answered during it")
ax.set_title("a compaction at 200/s, by its throughput")
ax.legend()

ax = axes[2]
for i, runs in enumerate(NICENESS.values()):
    for j, (co50, _co99, other99) in enumerate(runs):
        x = i * 4 + j
        ax.bar(x - 0.2, co50, width=0.4, color="#08519c", label="checkouts p50" if x == 0 else None)
        ax.bar(x + 0.2, other99, width=0.4, color="#fdae6b", label="other commands p99" if x == 0 else None)
ax.set_xticks([1, 5], ["query worker\nnice 0", "query worker\nnice 10"])
ax.set_ylabel("ms")
ax.set_title("200/s, three runs each")
ax.legend()

ax = axes[3]
ax.bar([b[0] for b in BENCH_P99_AT_200], [b[1] for b in BENCH_P99_AT_200], color="#756bb1")
ax.axhline(50, color="black", linestyle="--", linewidth=1)
ax.text(2.4, 55, "target 50 ms", ha="right", fontsize=9)
ax.set_ylabel("ms")
ax.set_title("make bench: p99 at an open-loop 200/s")

fig.tight_layout()
fig.savefig("docs/bench/2026-12-06-evening-tail.png", dpi=110)
print("docs/bench/2026-12-06-evening-tail.png")
