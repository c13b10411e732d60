"""The plot of docs/benchmarks.md, 2026-12-07: what a popular item's rows cost Cassandra with a partition per product
(item_quantity_by_day, until then) and in the vendor's month (item_quantity_by_vendor_month), from
docs/bench/read_model_writes_probe.py; and the catch-up of a 100,000-event backlog (`cart bench projections
--projection-events 100000`, one worker), events/s of each run and its median.

.venv/bin/python docs/bench/plot_2026-12-07.py   (from the checkout's root)
"""

import statistics

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

# Cassandra's CPU per popular item, us, two probe runs: both tables as the owner writes them
PROBE = {
    "per product\n+ day table": [175.0, 206.5],
    "vendor's month\n+ day table": [95.0, 77.0],
    "vendor's month\nalone": [67.0, 44.0],
    "day table\nalone": [26.0, 38.0],
}
# (label, runs): events/s in the order run
CATCH_UP = [
    ("before (53b5dcb),\ninterleaved", [8462, 8884, 7594, 9568]),
    ("after (working tree),\ninterleaved", [11109, 8501, 11059]),
    ("after (35bfa65),\nlater runs", [8920, 10150, 6917, 9226, 10390, 11146, 11885]),
    ("not kept: batches\nof 10,000 (35bfa65)", [8317, 8002]),
]

fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5), gridspec_kw={"width_ratios": [1, 1.3]})
names = list(PROBE)
left.bar(
    range(len(names)),
    [statistics.mean(v) for v in PROBE.values()],
    color=["tab:gray", "tab:blue", "tab:cyan", "tab:cyan"],
)
for n, runs in enumerate(PROBE.values()):
    left.scatter([n] * len(runs), runs, color="black", s=12, zorder=3)
left.set_xticks(range(len(names)), names, fontsize=8)
left.set_ylabel("Cassandra CPU per popular item, us (bar = mean, dots = runs)")
left.set_title("read_model_writes_probe.py 20000 (compactions off)")

for n, (_, runs) in enumerate(CATCH_UP):
    colour = "tab:gray" if n in (0, 3) else "tab:blue"
    right.scatter([n] * len(runs), runs, color=colour, alpha=0.7)
    right.hlines(statistics.median(runs), n - 0.15, n + 0.15, color=colour, linewidth=2.5)
right.axhline(10_000, color="tab:red", linestyle="--", linewidth=1)
right.text(len(CATCH_UP) - 0.6, 10_150, "target 10,000", color="tab:red", ha="right", fontsize=9)
right.set_xticks(range(len(CATCH_UP)), [label for label, _ in CATCH_UP], fontsize=8)
right.set_ylabel("catch-up, cart events/s (one run a dot, bar = median)")
right.set_title("catch-up of 100,000 events, one projection worker")
right.set_ylim(0, 12_500)
fig.tight_layout()
fig.savefig("docs/bench/2026-12-07-catch-up.png", dpi=110)
print("wrote docs/bench/2026-12-07-catch-up.png")
