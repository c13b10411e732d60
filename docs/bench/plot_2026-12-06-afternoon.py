"""The plot of docs/benchmarks.md, 2026-12-06, afternoon: CPU per command by process against the load offered, from
`make bench BENCH_ARGS="--journal-keyspace bench_1m"` at c655e3e (its open-loop levels and its saturation), with
what Kafka's requests alone cost a batch of one (the bench's `one_at_a_time` figures).

.venv/bin/python docs/bench/plot_2026-12-06-afternoon.py   (from the checkout's root)
"""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

PROCESSES = ["api", "command-worker", "query-worker", "kafka", "cassandra", "postgres", "bench generator"]
COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#999999"]
# (label, commands answered per second, CPU ms per command of each process in PROCESSES' order)
LEVELS = [
    ("100/s", 100.0, [1.647, 3.57, 1.933, 1.613, 1.817, 0.217, 0.74]),
    ("200/s", 199.9, [1.323, 2.585, 0.788, 1.153, 1.048, 0.057, 0.592]),
    ("500/s", 499.0, [0.779, 1.065, 0.367, 0.387, 0.469, 0.023, 0.473]),
    ("1000/s offered\n(631 answered)", 631.0, [0.523, 0.814, 0.465, 0.141, 0.585, 0.039, 0.447]),
    ("saturation\n(32 clients, 593/s)", 592.6, [0.62, 0.87, 0.40, 0.29, 0.40, 0.03, 0.35]),
]
# One message produced (acks=all) then consumed by a consumer of 12 partitions: 1.20 ms of the client's CPU and
# 0.50 ms of Kafka's a round trip. A command answered alone makes about two and a half such round trips (command
# in, its events out, its reply back), so about 3 ms of the machine's CPU per batch of one goes to Kafka requests.
KAFKA_ROUND_TRIP_MS = 1.20 + 0.50

fig, ax = plt.subplots(figsize=(10, 5))
for i, (_label, _, figures) in enumerate(LEVELS):
    bottom = 0.0
    for name, ms, colour in zip(PROCESSES, figures, COLOURS, strict=True):
        ax.bar(i, ms, bottom=bottom, color=colour, width=0.6, label=name if i == 0 else None)
        bottom += ms
    ax.text(i, bottom + 0.15, f"{bottom:.1f}", ha="center", fontsize=9)
ax.axhline(2.5 * KAFKA_ROUND_TRIP_MS, color="k", linestyle="--", linewidth=1)
ax.text(len(LEVELS) - 0.5, 2.5 * KAFKA_ROUND_TRIP_MS + 0.15, "Kafka requests of a batch of one", ha="right", fontsize=8)
ax.set_xticks(range(len(LEVELS)), [label for label, _, _ in LEVELS], fontsize=9)
ax.set_ylabel("CPU ms per command (whole machine)")
ax.set_title(
    "CPU per command falls as batches grow: the fixed costs are per batch (mostly Kafka requests)", fontsize=10
)
ax.legend(fontsize=8, ncol=4)
fig.tight_layout()
fig.savefig("docs/bench/2026-12-06-cpu-per-command-by-load.png", dpi=110)
