"""What a bench run writes: `latest.json` (everything), a summary for the terminal, `latest.md` (a section for
docs/benchmarks.md, every figure in it) and two plots: latency per offered load, and throughput and CPU per
process."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, TypeGuard

PROCESS_ORDER = (
    "api", "command-worker", "query-worker", "worker", "projection worker", "kafka", "cassandra", "postgres",
    "bench_generator", "rest",
)  # fmt: skip
HEADLINE = (
    "commands_per_s",
    "cpu_ms_per_command",
    "p99_ms_at_200_per_s",
    "p99_ms_at_500_per_s",
    "projection_events_per_s",
    "rebuild_1m_events_s",
    "verify_1m_events_s",
    "append_ceiling_per_s",
    "kafka_ceiling_msgs_per_s",
    "http_ceiling_per_s",
)
"""The keys `bench/latest.json` always has (the issue's list), in the order reported."""
HEADLINE_KEYS = (*HEADLINE[:8], "fence_ceiling_events_per_s", *HEADLINE[8:])
LATENCY_PLOT = "latest-latency.png"
THROUGHPUT_PLOT = "latest-throughput-cpu.png"


def number(value: Any, digits: int = 1) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def ok(figures: dict[str, Any] | None) -> TypeGuard[dict[str, Any]]:
    """A part that ran and measured (not failed, not skipped)."""
    return figures is not None and bool(figures) and "error" not in figures and "skipped" not in figures


def levels(doc: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = doc["parts"].get("open-loop", {}).get("levels", [])
    return found


def from_due(level: dict[str, Any], key: str) -> str:
    """A percentile of the latency from the due time; a lower bound (>=) when some commands were never answered."""
    value = level["latency_from_due_ms"][key]
    return (">= " if level["latency_is_lower_bound"] and value is not None else "") + number(value, 0)


def probe_cell(figures: dict[str, Any] | None) -> str:
    """The host-speed probe around a part or a level (app/tools/bench/host.py): before / after, in ms."""
    probe = (figures or {}).get("host_probe_ms")
    return f"{number(probe['before'], 0)} / {number(probe['after'], 0)}" if probe else "n/a"


def process_rows(cpu: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    rows = [(name, figures) for name, figures in cpu.get("processes", {}).items()]
    rows.sort(key=lambda r: next((i for i, p in enumerate(PROCESS_ORDER) if r[0].startswith(p)), 99))
    return [*rows, ("bench generator", cpu["bench_generator"]), ("rest of the machine", cpu["rest_of_machine"])]


# --- Terminal summary -------------------------------------------------------------------------------------


def summary(doc: dict[str, Any]) -> str:
    machine = doc["machine"]
    lines = [
        "",
        f"bench of {doc['api']} on {machine['hostname']} ({machine['cores']} cores, {machine['cpu_model']}), "
        f"{doc['started_at']}",
        "",
        "headline",
    ]
    for key in HEADLINE_KEYS:
        why = doc["null_reasons"].get(key) if doc[key] is None else doc["headline_notes"].get(key)
        lines.append(f"  {key:<28} {number(doc[key]):>12}" + (f"   ({why})" if why else ""))
    lines.append("ratios to the ceilings")
    lines += [f"  {name:<52} {number(value, 4):>8}" for name, value in doc["ratios"].items()]
    if levels(doc):
        lines.append("open loop (latency from the due time)")
        lines.append(
            f"  {'offered/s':>9} {'answered/s':>10} {'p50 ms':>10} {'p99 ms':>10} {'503s':>6} {'errors':>6} "
            f"{'unanswered':>10} {'host probe ms':>13}  stopped early"
        )
        for level in levels(doc):
            lines.append(
                f"  {level['offered_per_s']:>9g} {level['answered_ok_per_s']:>10} {from_due(level, 'p50_ms'):>10} "
                f"{from_due(level, 'p99_ms'):>10} {level['retries'].get('503', 0):>6} {level['errors']:>6} "
                f"{level['unanswered_at_end']:>10} {probe_cell(level):>13}  {'yes' if level['stopped_early'] else ''}"
            )
    saturation = doc["parts"].get("saturation")
    if ok(saturation):
        cpu = saturation["cpu"]
        shares = ", ".join(f"{name} {number(f.get('ms_per_command'), 2)}" for name, f in process_rows(cpu))
        lines.append(f"CPU ms per command under saturation: {shares}")
        lag = number(saturation.get("lag_back_to_0_s"), 2)
        lines.append(f"query side's lag back to 0 after the saturation: {lag} s")
    for name, profile in doc["parts"].get("profile", {}).get("processes", {}).items():
        if "self" in profile:
            top = "; ".join(f"{f['function']} {f['pct']}%" for f in profile["self"][:5])
            lines.append(f"profile {name}, top self: {top}")
    if doc["failed_parts"]:
        lines.append(f"failed parts: {', '.join(doc['failed_parts'])}")
    return "\n".join(lines)


# --- Markdown ---------------------------------------------------------------------------------------------


def table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return lines


def markdown(doc: dict[str, Any]) -> str:
    machine = doc["machine"]
    o = doc["options"]
    out = [
        f"## {doc['started_at'][:10]}: {machine['hostname']}, {machine['cores']} cores ({machine['cpu_model']})",
        "",
        f"`cart bench` against {doc['api']}, from {doc['started_at']} to {doc['finished_at']}; "
        f"{machine['memory_gib']} GiB, Linux {machine['kernel']}, Python {machine['python']}, load average at the "
        f"start {machine['load_average_at_start']}, host probe at the start "
        f'{number(machine.get("host_probe_ms_at_start"), 0)} ms (see "Host speed"). Processes watched: '
        + ", ".join(f"{p['name']} ({p['pid']})" for p in machine["processes_watched"])
        + ". Every service, the system and the load generator share this machine.",
        "",
        *headline_table(doc),
        "",
    ]
    out += ceilings_section(doc["parts"])
    out += saturation_section(doc["parts"].get("saturation"), o)
    out += open_loop_section(doc, o)
    out += read_delay_section(doc["parts"].get("read-delay"))
    out += projections_section(doc["parts"].get("projections"))
    out += offline_section(doc["parts"].get("offline"))
    out += profile_section(doc["parts"].get("profile"))
    out += host_section(doc)
    out += [
        "### Plots",
        "",
        f"![latency per offered load](bench/{LATENCY_PLOT})",
        "",
        f"![throughput and CPU per process](bench/{THROUGHPUT_PLOT})",
        "",
    ]
    if doc["failed_parts"]:
        out += [f"Failed parts: {', '.join(doc['failed_parts'])} (their errors are in latest.json).", ""]
    return "\n".join(out)


def headline_table(doc: dict[str, Any]) -> list[str]:
    r = doc["ratios"]
    rows = [
        (
            "commands/s, closed loop",
            number(doc["commands_per_s"]),
            f"{number(r['commands_per_s / append_ceiling_per_s'], 4)} of the append ceiling, "
            f"{number(r['commands_per_s / http_ceiling_per_s'], 4)} of the HTTP ceiling, "
            f"{number(r['commands_per_s / kafka_ceiling_msgs_per_s'], 4)} of the Kafka ceiling",
        ),
        ("CPU ms per command (whole machine)", number(doc["cpu_ms_per_command"], 2), ""),
        ("p99 ms at 200/s offered (from due)", number(doc["p99_ms_at_200_per_s"], 0), ""),
        ("p99 ms at 500/s offered (from due)", number(doc["p99_ms_at_500_per_s"], 0), ""),
        (
            "projection events/s (catch-up)",
            number(doc["projection_events_per_s"]),
            f"{number(r['projection_events_per_s / kafka_ceiling_msgs_per_s'], 4)} of the Kafka ceiling, "
            f"{number(r['projection_events_per_s / fence_ceiling_events_per_s'], 4)} of the fenced-batch ceiling",
        ),
        ("rebuild, 1M-event journal (s)", number(doc["rebuild_1m_events_s"]), ""),
        ("verify, 1M-event journal (s)", number(doc["verify_1m_events_s"]), ""),
        ("ceiling: conditional appends/s", number(doc["append_ceiling_per_s"]), ""),
        ("ceiling: fenced batch, events/s", number(doc["fence_ceiling_events_per_s"]), ""),
        ("ceiling: Kafka produce+consume msgs/s", number(doc["kafka_ceiling_msgs_per_s"]), ""),
        ("ceiling: HTTP /health requests/s", number(doc["http_ceiling_per_s"]), ""),
    ]
    lines = table(("figure", "value", "as a ratio"), rows)
    if doc["headline_notes"]:
        lines += ["", "Notes: " + "; ".join(f"`{k}` is {v}" for k, v in doc["headline_notes"].items()) + "."]
    if doc["null_reasons"]:
        lines += ["", "Not measured: " + "; ".join(f"`{k}`: {v}" for k, v in doc["null_reasons"].items()) + "."]
    return lines


def cpu_cell(figures: dict[str, Any] | None) -> str:
    return "" if not figures else f"{number(figures['pct_of_a_core'])}%"


def ceilings_section(parts: dict[str, Any]) -> list[str]:
    out = ["### Ceilings of this machine", ""]
    append, kafka, http = parts.get("append-ceiling"), parts.get("kafka-ceiling"), parts.get("http-ceiling")
    if ok(append):
        rows = [
            (
                f"conditional append (`INSERT ... IF NOT EXISTS`), concurrency {r['concurrency']}",
                f"{number(r['per_s'])} appends/s",
                cpu_cell(r["cpu"]["processes"].get("cassandra")),
                cpu_cell(r["cpu"]["bench_generator"]),
            )
            for r in append["by_concurrency"]
        ] + [
            (
                f"fenced batch of {append['fence_events_per_batch']} events, {r['partitions']} partitions",
                f"{number(r['per_s'])} events/s",
                cpu_cell(r["cpu"]["processes"].get("cassandra")),
                cpu_cell(r["cpu"]["bench_generator"]),
            )
            for r in append["fence_by_partitions"]
        ]
        out += [*table(("what", "rate", "Cassandra CPU", "bench CPU"), rows), ""]
    others = []
    if ok(kafka):
        others.append(
            (
                f"Kafka produce+consume, {kafka['message_bytes']}-byte messages, aiokafka, acks=all",
                f"{number(kafka['kafka_ceiling_msgs_per_s'])} msgs/s",
                cpu_cell(kafka["cpu"]["processes"].get("kafka")),
                cpu_cell(kafka["cpu"]["bench_generator"]),
            )
        )
        lone = kafka.get("one_at_a_time")  # absent from runs before 2026-12-06, afternoon
        if lone:
            others.append(
                (
                    "Kafka, one message at a time: produced (acks=all), consumed, then the next",
                    f"p50 {number(lone['p50_us'])} us a round trip",
                    f"{number(lone['kafka_cpu_us_per_round_trip'])} us CPU each",
                    f"{number(lone['client_cpu_us_per_round_trip'])} us CPU each",
                )
            )
    if ok(http):
        others.append(
            (
                f"HTTP GET /health, {http['concurrency']} clients, closed loop",
                f"{number(http['http_ceiling_per_s'])} requests/s",
                cpu_cell(http["cpu"]["processes"].get("api")),
                cpu_cell(http["cpu"]["bench_generator"]),
            )
        )
    if others:
        out += [*table(("what", "rate", "server CPU (% of a core)", "bench CPU"), others), ""]
    return out


def workers_of(projections: dict[str, Any]) -> str:
    workers = projections.get("workers", 1)  # absent from runs before 2026-12-05
    return "a worker" if workers == 1 else f"{workers} workers"


def cpu_table(cpu: dict[str, Any], per: str = "command") -> list[str]:
    rows = [(name, number(f.get(f"ms_per_{per}"), 2), number(f["pct_of_a_core"])) for name, f in process_rows(cpu)]
    rows.append(("**whole machine**", number(cpu.get(f"cpu_ms_per_{per}"), 2), number(cpu["machine"]["pct_of_a_core"])))
    return table(("process", f"CPU ms per {per}", "% of a core"), rows)


def saturation_section(saturation: dict[str, Any] | None, o: dict[str, Any]) -> list[str]:
    if not ok(saturation):
        return []
    lat = saturation["latency_ms"]
    out = [
        f"### Saturation: {saturation['concurrency']} clients, closed loop, {o['seconds']:g} s, "
        f"{saturation['members']} members",
        "",
        f"{number(saturation['commands_per_s'])} commands/s; latency p50 {number(lat['p50_ms'], 0)} ms, p95 "
        f"{number(lat['p95_ms'], 0)} ms, p99 {number(lat['p99_ms'], 0)} ms; answers by status "
        f"{saturation['statuses']}, retries {saturation['retries'] or 'none'}; machine "
        f"{number(saturation['cpu']['machine_busy_pct'])}% busy; the query side's lag back to 0 "
        f"{number(saturation.get('lag_back_to_0_s'), 2)} s after the load.",
        "",
        *table(
            ("command", "n", "p50 ms", "p95 ms", "p99 ms"),
            [
                (kind, s["n"], number(s["p50_ms"], 0), number(s["p95_ms"], 0), number(s["p99_ms"], 0))
                for kind, s in saturation["latency_ms_by_kind"].items()
            ],
        ),
        "",
        *cpu_table(saturation["cpu"]),
        "",
    ]
    return out


def open_loop_section(doc: dict[str, Any], o: dict[str, Any]) -> list[str]:
    if not levels(doc):
        return []
    rows = []
    for level in levels(doc):
        rows.append(
            (
                f"{level['offered_per_s']:g}",
                number(level["answered_ok_per_s"]),
                from_due(level, "p50_ms"),
                from_due(level, "p95_ms"),
                from_due(level, "p99_ms"),
                level["retries"].get("503", 0),
                level["errors"],
                sum(level["retries"].values()),
                level["unanswered_at_end"],
                number(level["cpu"].get("cpu_ms_per_command"), 2),
                probe_cell(level),
                level["stopped_early"] or "",
            )
        )
    return [
        f"### Open loop: {o['level_seconds']:g} s per level, latency from the due time",
        "",
        "A command's latency counts from when the timetable said to send it, so a system that falls behind shows "
        "its whole delay. Unanswered commands count as the time they had waited (`>=`: a lower bound). A level "
        f"stops early once a command due {o['late_limit_s']:g} s ago is still not answered.",
        "",
        *table(
            (
                "offered/s",
                "answered/s",
                "p50 ms",
                "p95 ms",
                "p99 ms",
                "503s",
                "errors",
                "retries",
                "unanswered",
                "CPU ms/command",
                "host probe ms",
                "stopped early",
            ),
            rows,
        ),
        "",
    ]


def host_section(doc: dict[str, Any]) -> list[str]:
    rows = [(part, probe_cell(figures)) for part, figures in doc["parts"].items()]
    rows += [(f"open loop {x['offered_per_s']:g}/s", probe_cell(x)) for x in levels(doc)]
    return [
        "### Host speed",
        "",
        "A fixed pure-Python loop timed before and after each part and each open-loop level (the best of three; "
        "lower is faster). On a shared host it swings by 2-3x within minutes: compare a latency only with one "
        "taken at a similar probe.",
        "",
        *table(("part", "host probe ms, before / after"), rows),
        "",
    ]


def read_delay_section(read: dict[str, Any] | None) -> list[str]:
    if not ok(read):
        return []
    rows = [
        (
            source,
            s["n"],
            number(s["p50_ms"], 0),
            number(s["p95_ms"], 0),
            number(s["p99_ms"], 0),
            read["not_readable_within_10_s"][source],
        )
        for source, s in read["reply_to_readable_ms"].items()
    ]
    return [
        f"### Read delay at {read['offered_per_s']:g} commands/s ({read['members']} members)",
        "",
        "From a checkout's reply to its purchase being in the vendor billing (`after=<position>&waitMs=10000`: "
        "includes the HTTP round trip and the read API's 100 ms polling step).",
        "",
        *table(("read model", "readable", "p50 ms", "p95 ms", "p99 ms", "not readable within 10 s"), rows),
        "",
        *(
            f"Not readable in {source}: " + "; ".join(f"{n} x {why}" for why, n in sorted(reasons.items())) + "."
            for source, reasons in read.get("not_readable_why", {}).items()
            if reasons
        ),
        "",
        f"After the load, lag of `{read['consumer_group']}` back to 0 in {number(read['lag_back_to_0_s'], 2)} s "
        "(the lag moves with the workers' commits).",
        "",
    ]


def projections_section(projections: dict[str, Any] | None) -> list[str]:
    if not ok(projections):
        return []
    caught = "caught up" if projections["caught_up"] else "did NOT catch up before the time-out"
    return [
        "### Projections: catch-up over a backlog",
        "",
        f"{number(projections['events'], 0)} events of {number(projections['members'], 0)} members (sessions "
        "decided by the cart's rules, in the journal and on cart-events) in a system of the bench's own; "
        f"{workers_of(projections)} with `CART_AGENTS={projections['agents']}` {caught}: "
        f"{number(projections['events_applied'], 0)} events "
        f"in {number(projections['seconds_from_ready_to_lag_0'])} s from ready to lag 0 = "
        f"**{number(projections['projection_events_per_s'])} events/s**.",
        "",
        *by_agent_table(projections.get("by_agent")),  # absent from runs before 2026-12-06, afternoon
        *cpu_table(projections["cpu"], per="event"),
        "",
    ]


def by_agent_table(by_agent: dict[str, Any] | None) -> list[str]:
    """Each projection's own catch-up: when it had nothing left to read, once the backlog had gone through."""
    if not by_agent:
        return []
    rows = [
        (f"`{agent}`", number(figures["seconds_from_ready_to_lag_0"]), number(figures["events_per_s"]))
        for agent, figures in by_agent.items()
    ]
    return [*table(("agent", "s from ready to its lag 0", "backlog events/s"), rows), ""]


def offline_section(offline: dict[str, Any] | None) -> list[str]:
    if offline is None:
        return []
    if not ok(offline):
        return ["### Rebuild and verify", "", f"Not measured: {offline.get('skipped') or offline.get('error')}.", ""]
    rows = [(f"rebuild {m}", number(r["seconds"]), r["exit"], r["said"]) for m, r in offline["rebuild"].items()]
    v = offline["verify"]
    rows.append(("verify", number(v["seconds"]), v["exit"], v["said"]))
    return [
        f"### Rebuild and verify: keyspace `{offline['journal_keyspace']}`",
        "",
        *table(("command", "seconds", "exit", "last line"), rows),
        "",
    ]


def profile_section(profile: dict[str, Any] | None) -> list[str]:
    if not ok(profile):
        return []
    out = [f"### Profile: py-spy, {profile['seconds']:g} s under {profile['under']}", ""]
    for name, found in profile["processes"].items():
        if "error" in found:
            out += [f"{name}: not sampled ({found['error']}).", ""]
            continue
        in_c = found.get("in_c_event_loop_pct")
        out += [
            f"**{name}** ({found['working_samples']} working samples of {found['samples']}; "
            f"{number(in_c)}% of the samples were in a C event loop, waiting or doing I/O, and are left out):",
            "",
        ]
        rows = []
        for i in range(max(len(found["self"]), len(found["inclusive"]))):
            own = found["self"][i] if i < len(found["self"]) else None
            inc = found["inclusive"][i] if i < len(found["inclusive"]) else None
            rows.append(
                (
                    f"`{own['function']}`" if own else "",
                    f"{own['pct']}%" if own else "",
                    f"`{inc['function']}`" if inc else "",
                    f"{inc['pct']}%" if inc else "",
                )
            )
        out += [*table(("self", "%", "inclusive", "%"), rows), ""]
    return out


# --- Plots ------------------------------------------------------------------------------------------------


def plots(doc: dict[str, Any], folder: Path) -> list[Path]:
    """The PNGs written (none without matplotlib)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    written = []
    if levels(doc):
        fig = latency_figure(plt, doc)
        fig.savefig(folder / LATENCY_PLOT, dpi=110)
        plt.close(fig)
        written.append(folder / LATENCY_PLOT)
    fig = throughput_figure(plt, doc)
    fig.savefig(folder / THROUGHPUT_PLOT, dpi=110)
    plt.close(fig)
    written.append(folder / THROUGHPUT_PLOT)
    return written


def latency_figure(plt: Any, doc: dict[str, Any]) -> Any:
    found = levels(doc)
    offered = [x["offered_per_s"] for x in found]
    fig, (latency, answered) = plt.subplots(1, 2, figsize=(12, 4.8))
    for key, style in (("p50_ms", "o-"), ("p95_ms", "s-"), ("p99_ms", "^-")):
        values = [x["latency_from_due_ms"][key] or float("nan") for x in found]
        latency.plot(offered, values, style, label=key.removesuffix("_ms"))
    bounded = [x for x in found if x["latency_is_lower_bound"]]
    if bounded:  # ringed: some commands were never answered, so these percentiles are only lower bounds
        points = [
            (x["offered_per_s"], x["latency_from_due_ms"][k]) for x in bounded for k in ("p50_ms", "p95_ms", "p99_ms")
        ]
        latency.scatter(
            [p[0] for p in points if p[1]], [p[1] for p in points if p[1]], s=130, facecolors="none",
            edgecolors="black", label="lower bound (unanswered)",
        )  # fmt: skip
    latency.set_xscale("log")
    latency.set_xticks(offered, [f"{x:g}" for x in offered])
    latency.set_yscale("log")
    latency.set_xlabel("offered load (commands/s)")
    latency.set_ylabel("latency from the due time (ms)")
    latency.set_title("open loop: latency percentiles per offered load")
    latency.legend()
    answered.plot(offered, [x["answered_ok_per_s"] for x in found], "o-", label="answered/s")
    answered.plot(offered, offered, ":", color="grey", label="offered")
    answered.set_xscale("log")
    answered.set_xticks(offered, [f"{x:g}" for x in offered])
    answered.set_yscale("log")
    answered.set_xlabel("offered load (commands/s)")
    answered.set_ylabel("commands answered/s")
    answered.set_title("open loop: throughput")
    answered.legend()
    fig.suptitle(f"{doc['machine']['hostname']} {doc['started_at']}", fontsize=8)
    fig.tight_layout()
    return fig


def cpu_phases(doc: dict[str, Any]) -> list[tuple[str, dict[str, Any], str]]:
    """(label, cpu figures, per what) of every phase of load that ran."""
    parts = doc["parts"]
    phases = []
    if ok(parts.get("saturation")):
        phases.append((f"saturation c{parts['saturation']['concurrency']}", parts["saturation"]["cpu"], "command"))
    phases += [(f"open {x['offered_per_s']:g}/s", x["cpu"], "command") for x in levels(doc)]
    if ok(parts.get("read-delay")):
        phases.append((f"read delay {parts['read-delay']['offered_per_s']:g}/s", parts["read-delay"]["cpu"], "command"))
    if ok(parts.get("projections")):
        phases.append(("catch-up (per event)", parts["projections"]["cpu"], "event"))
    return phases


def throughput_figure(plt: Any, doc: dict[str, Any]) -> Any:
    fig, (cpu_axis, rates_axis, timeline_axis) = plt.subplots(3, 1, figsize=(11, 12))
    phases = cpu_phases(doc)
    names = sorted(
        {name for _, cpu, _ in phases for name, _ in process_rows(cpu)},
        key=lambda n: next((i for i, p in enumerate(PROCESS_ORDER) if n.startswith(p)), 99),
    )
    bottoms = [0.0] * len(phases)
    for name in names:
        values = []
        for _, cpu, per in phases:
            figures = dict(process_rows(cpu)).get(name)
            values.append((figures or {}).get(f"ms_per_{per}") or 0.0)
        cpu_axis.bar(range(len(phases)), values, bottom=bottoms, label=name)
        bottoms = [b + v for b, v in zip(bottoms, values, strict=True)]
    cpu_axis.set_xticks(range(len(phases)), [label for label, _, _ in phases], fontsize=8)
    cpu_axis.set_ylabel("CPU ms per command (per event for catch-up)")
    cpu_axis.set_title("CPU per process")
    if names:
        cpu_axis.legend(fontsize=7, ncols=4, loc="upper left")
    bars = [
        ("commands/s (saturation)", doc["commands_per_s"]),
        ("projection events/s", doc["projection_events_per_s"]),
        ("ceiling: conditional appends/s", doc["append_ceiling_per_s"]),
        ("ceiling: fenced batch events/s", doc["fence_ceiling_events_per_s"]),
        ("ceiling: Kafka msgs/s", doc["kafka_ceiling_msgs_per_s"]),
        ("ceiling: HTTP /health req/s", doc["http_ceiling_per_s"]),
    ]
    shown = [(label, value) for label, value in bars if value]
    rates_axis.barh([label for label, _ in shown], [value for _, value in shown], color="tab:green")
    for i, (_, value) in enumerate(shown):
        rates_axis.annotate(f"{value:,.0f}", (value, i), fontsize=8, xytext=(3, -3), textcoords="offset points")
    rates_axis.set_xscale("log")
    rates_axis.set_title("throughput and the machine's ceilings (log)")
    saturation = doc["parts"].get("saturation")
    if ok(saturation):
        timeline = saturation["answered_per_s_timeline"]
        timeline_axis.plot(range(len(timeline)), timeline, drawstyle="steps-post")
    timeline_axis.set_xlabel("seconds since the saturation phase started")
    timeline_axis.set_ylabel("commands answered per second")
    timeline_axis.set_title("saturation over time")
    fig.suptitle(f"{doc['machine']['hostname']} {doc['started_at']}", fontsize=8)
    fig.tight_layout()
    return fig


def write(doc: dict[str, Any], folder: Path) -> list[Path]:
    """latest.json, latest.md and the plots, in `folder`; the paths written."""
    folder.mkdir(parents=True, exist_ok=True)
    written = plots(doc, folder)
    doc["plots"] = [str(p) for p in written]
    (folder / "latest.json").write_text(json.dumps(doc, indent=2) + "\n")
    (folder / "latest.md").write_text(markdown(doc))
    return [folder / "latest.json", folder / "latest.md", *written]
