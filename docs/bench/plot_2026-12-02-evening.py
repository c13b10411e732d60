"""docs/bench/2026-12-02-evening-steps.png: CPU ms per command by process, per step of the evening (medians)."""

from pathlib import Path

from matplotlib.figure import Figure  # no pyplot: no display backend needed

steps = ["start\n(b36982e)", "batched loads\n(fa49fe6)", "query fetch\nwaits (3860757)", "sends as bytes\n(ffa0362)"]
runs = [2, 2, 4, 3]
procs = ["API", "command worker", "query worker", "Kafka", "Cassandra"]
values = {
    "API": [1.73, 1.95, 1.99, 1.92],
    "command worker": [2.66, 2.81, 2.83, 2.33],
    "query worker": [1.82, 2.09, 1.57, 1.51],
    "Kafka": [1.16, 1.32, 1.09, 0.83],
    "Cassandra": [3.75, 3.57, 2.72, 2.48],
}
cps = [146.2, 140.4, 160.4, 174.7]
fig = Figure(figsize=(12, 4.8))
ax, bx = fig.subplots(1, 2, gridspec_kw={"width_ratios": [3, 2]})
bottom = [0.0] * len(steps)
for proc in procs:
    ax.bar(steps, values[proc], bottom=bottom, label=proc)
    bottom = [b + v for b, v in zip(bottom, values[proc], strict=True)]
for i, total in enumerate(bottom):
    ax.text(i, total + 0.1, f"{total:.1f} ms", ha="center")
ax.set_ylabel("CPU ms per command (median of the step's runs)")
ax.set_title("Where a command's CPU goes, 2026-12-02 evening\nload.py --saturate --concurrency 32 --members 1000, 20 s")
ax.legend(loc="lower left", fontsize=8)
ax.set_ylim(0, max(bottom) * 1.15)
bx.bar(steps, cps, color="tab:gray")
for i, c in enumerate(cps):
    bx.text(i, c + 2, f"{c:.0f}/s\n({runs[i]} runs)", ha="center", fontsize=8)
bx.set_ylabel("commands/s (median)")
bx.set_ylim(0, max(cps) * 1.25)
bx.set_title("Throughput (same runs; the host's noise is ±15%)")
for a in (ax, bx):
    a.tick_params(axis="x", labelsize=8)
fig.tight_layout()
fig.savefig(Path(__file__).with_name("2026-12-02-evening-steps.png"), dpi=110)
