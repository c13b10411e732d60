"""The plot of docs/benchmarks.md, 2026-12-06, late night: the catch-up of a 100,000-event backlog
(`cart bench projections --projection-events 100000`), interleaved pairs, before (A) and after (B), events/s of each
run and its median; and what handing messages to aiokafka costs its client per message
(docs/bench/batch_send_probe.py).

.venv/bin/python docs/bench/plot_2026-12-06-late-night.py   (from the checkout's root)
"""

import statistics

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

# (label, A runs, B runs): events/s in the order run
CATCH_UP = [
    ("Outbox\n40dee27 -> e954f2c", [6362, 6168, 6832], [8552, 7429, 8680]),
    ("decoding less\ne954f2c -> 59162e6", [9665, 7329, 8917, 8504, 10387, 8903], [6486, 9944, 11689, 7961, 9876, 8158]),
    ("not kept: 2 workers\n1 -> 2 (59162e6)", [7260, 8415], [8318, 11680]),
    ("not kept: behind wait\n0.25 -> 0.05 s", [9360, 8023, 7613], [6407, 7563, 9283]),
]
# client CPU per 300-byte message, us: (one send each, a batch per partition), two runs each
PROBE = {"16 KiB batches": ([20.0, 19.6], [7.7, 7.7]), "256 KiB batches": ([12.6, 12.2], [1.6, 1.8])}

fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5), gridspec_kw={"width_ratios": [2.2, 1]})
for n, (_, a, b) in enumerate(CATCH_UP):
    for offset, runs, colour in ((-0.17, a, "tab:gray"), (0.17, b, "tab:blue")):
        left.scatter([n + offset] * len(runs), runs, color=colour, alpha=0.7)
        left.hlines(statistics.median(runs), n + offset - 0.12, n + offset + 0.12, color=colour, linewidth=2.5)
left.axhline(10_000, color="tab:red", linestyle="--", linewidth=1)
left.text(len(CATCH_UP) - 0.5, 10_150, "target 10,000", color="tab:red", ha="right", fontsize=9)
left.set_xticks(range(len(CATCH_UP)), [label for label, *_ in CATCH_UP], fontsize=8)
left.set_ylabel("catch-up, cart events/s (one run a dot, bar = median)")
left.set_title("catch-up of 100,000 events: before (grey) and after (blue), interleaved")
left.set_ylim(0, 12_500)

names = list(PROBE)
for n, name in enumerate(names):
    each, batched = PROBE[name]
    right.bar(n - 0.2, statistics.mean(each), 0.4, color="tab:gray", label="one send each" if n == 0 else None)
    batch_label = "a batch per partition" if n == 0 else None
    right.bar(n + 0.2, statistics.mean(batched), 0.4, color="tab:blue", label=batch_label)
right.set_xticks(range(len(names)), names)
right.set_ylabel("client CPU per message, us")
right.set_title("aiokafka 0.14, acks=all, idempotent")
right.legend()
fig.tight_layout()
fig.savefig("docs/bench/2026-12-06-late-night-catch-up.png", dpi=110)
print("wrote docs/bench/2026-12-06-late-night-catch-up.png")
