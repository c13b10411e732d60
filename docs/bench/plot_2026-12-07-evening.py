"""The plot of docs/benchmarks.md, 2026-12-07, evening: every full garbage collection of the command worker and of
the query worker during the same load (a restart, 60 s of saturation, 30 s at 100/s and at 200/s), before and after
the cuts, two interleaved pairs of runs; and a full pass with N cached carts (docs/bench/gc_carts_probe.py). The
figures are the runs' own, copied from the section.

.venv/bin/python docs/bench/plot_2026-12-07-evening.py   (from the checkout's root)
"""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

# ms of each full collection from the load's start to its end (a gc.callbacks hook in each process)
PASSES = {
    "before 1": {"command worker": [82.4, 120.8, 59.2], "query worker": [291.4]},
    "after 1": {"command worker": [32.7, 27.2], "query worker": [6.6]},
    "before 2": {"command worker": [77.3, 102.8, 161.5], "query worker": [237.3]},
    "after 2": {"command worker": [17.8, 23.6], "query worker": [4.8]},
}
# a full pass (ms) with N cached carts: before (every pass alike), after (the third to fifth passes)
CARTS = [10_000, 100_000]
PROBE_BEFORE = [16, 566]
PROBE_AFTER = [0.5, 8.5]  # the probe prints whole ms: 0 at 10,000 (drawn as 0.5, labelled "<1")


def main() -> None:
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.6))
    colours = {"command worker": "tab:blue", "query worker": "tab:orange"}
    offsets = {"command worker": -0.12, "query worker": 0.12}
    for x, by_process in enumerate(PASSES.values()):
        for process, passes in by_process.items():
            offset = offsets[process]
            left.scatter([x + offset] * len(passes), passes, color=colours[process], s=40, zorder=3,
                         label=process if x == 0 else None)  # fmt: skip
        total = sum(p for ps in by_process.values() for p in ps)
        left.annotate(f"{total:.0f} ms in all", (x, max(max(ps) for ps in by_process.values()) + 12), ha="center")
    left.set_xticks(range(len(PASSES)), list(PASSES))
    left.set_ylabel("a full collection, ms (its process stands still)")
    left.set_title("Full collections in the same load, before and after")
    left.set_ylim(0, 340)
    left.grid(axis="y", alpha=0.3)
    left.legend(loc="upper right")

    width = 0.35
    xs = range(len(CARTS))
    right.bar([x - width / 2 for x in xs], PROBE_BEFORE, width, label="before: carts as objects", color="tab:red")
    right.bar([x + width / 2 for x in xs], PROBE_AFTER, width, label="after: carts as plain values", color="tab:green")
    for x, (b, a) in enumerate(zip(PROBE_BEFORE, PROBE_AFTER, strict=True)):
        right.annotate(f"{b} ms", (x - width / 2, b + 8), ha="center")
        right.annotate("<1 ms" if a < 1 else f"{a:g} ms", (x + width / 2, a + 8), ha="center")
    right.set_xticks(list(xs), [f"{n:,} cached carts" for n in CARTS])
    right.set_ylabel("a full collection, ms")
    right.set_title("A full collection with N cached carts (gc_carts_probe.py)")
    right.legend(loc="upper left")
    right.grid(axis="y", alpha=0.3)

    fig.tight_layout()
    fig.savefig("docs/bench/2026-12-07-evening.png", dpi=110)


if __name__ == "__main__":
    main()
