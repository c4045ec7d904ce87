"""Markdown tables (for BENCHMARKS.md) and the bar verdicts of one comparison run."""

from __future__ import annotations

from statistics import mean, median
from typing import Any

ACCURACY_COLUMNS = (
    ("hostmedic process", "hostmedic process"),
    ("hostmedic remote", "hostmedic remote"),
    ("nethogs KB/s∫ process", "nethogs KB/s∫ process"),
    ("nethogs -C KB/s∫ process", "nethogs -C KB/s∫ process"),
    ("nethogs -C -v2 process", "nethogs -C -v2 process ¹"),
    ("iftop remote", "iftop remote"),
)
MONITORS = ("hostmedic", "nethogs", "nethogs -C", "iftop")
BARS = {"tcp200": 0.01, "short50": 0.05, "flood": 0.10, "pps": 0.05, "rate": 0.01, "soak": 150.0}


def pct(x: float | None, digits: int = 2) -> str:
    return "–" if x is None else f"{100 * x:.{digits}f} %"


def _load(section: dict[str, Any]) -> str:
    la = section.get("loadavg")
    if isinstance(la, dict):
        la = la.get("start")
    return "–" if not la else f"{la[0]:.2f}"


def machine(facts: dict[str, Any]) -> str:
    start, end = facts.get("source_start"), facts.get("source_end")
    source = start if end in (None, start) else f"{start} → {end} (changed during the run)"
    return (
        f"Machine: {facts['nproc']} CPUs ({facts['cpu_model']}), kernel {facts['kernel']}, "
        f"{facts['os']}; hostmedic {facts['hostmedic']} at {source}, {facts['nethogs']}, "
        f"{facts['iftop']}, {facts['iperf3']}. Run {facts['started']} "
        f"(load average at start {facts['loadavg_start']}, at end {facts.get('loadavg_end')}); "
        f"other benchmark namespaces during the run: {facts.get('foreign_seen') or 'none'}."
    )


def accuracy_table(runs: list[dict[str, Any]]) -> str:
    head = "| scenario · link | truth (IP bytes) | " + " | ".join(h for _, h in ACCURACY_COLUMNS)
    lines = [head + " | load avg |", "|" + " --- |" * (len(ACCURACY_COLUMNS) + 3)]
    for r in runs:
        if "error" in r:
            lines.append(
                f"| {r['scenario']} | failed: {r['error']} |" + " |" * (len(ACCURACY_COLUMNS) + 1)
            )
            continue
        for e in r["expects"]:
            shares = e["share_of_ip_truth"]
            cells = " | ".join(pct(shares.get(k)) for k, _ in ACCURACY_COLUMNS)
            truth = e["truth"]["tx_bytes"] + e["truth"]["rx_bytes"]
            lines.append(f"| {r['scenario']} · {e['label']} | {truth:,} | {cells} | {_load(r)} |")
    return "\n".join(lines)


def accuracy_notes() -> str:
    return (
        "Share of the truth's bytes (peer veth counters, IP level = frame − 14 B/packet) that "
        "each tool gives the right process (pid) or the right remote (peer address). "
        "nethogs KB/s∫ = Σ (KB/s × 1024 × 1 s) over its trace-mode refreshes (its KB/s is the "
        "last 5 whole-second buckets / 5, so the integral reads low); ¹ `-v 2` prints its "
        "cumulative bytes, which are Ethernet frames (+14 B/packet, ≈ +1 % on full-size "
        "packets). iftop prints three significant digits (≤ 0.5 % rounding per figure)."
    )


def _cpu(section: dict[str, Any] | None, name: str) -> float | None:
    if not section or "cpu" not in section:
        return None
    return core(section["cpu"].get(name))


def core(c: dict[str, float] | None) -> float | None:
    """The larger of the two CPU figures: stat ticks miss a process that runs a few ms per
    second (10 ms granularity), schedstat misses threads that already exited."""
    return None if not c else max(c["core_share"], c["core_share_schedstat"])


RECEIVER_LABELS = {
    "local": "receiver on this machine",
    "remote": "receiver elsewhere (dropped before any socket)",
}


def _ok(f: dict[str, Any]) -> bool:
    return "error" not in f and bool(f.get("rates"))


def _receiver(f: dict[str, Any]) -> str:
    return str(f.get("receiver", "local"))  # runs before 2026-11-24 had local receivers


def _flood_by_monitor(
    flood: list[dict[str, Any]], receiver: str | None = None
) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for f in flood:
        if _ok(f) and receiver in (None, _receiver(f)):
            out.setdefault(f["monitor"], []).append(f)
    return out


def pps_ratios(flood: list[dict[str, Any]], receiver: str) -> dict[str, list[float]]:
    """Per monitor: each run's packet rate over the mean of the no-monitor runs right
    before and after it (same receiver). Load from other work drifts over minutes; a
    bracketing baseline cancels most of that drift, a global mean does not."""
    runs = [(i, f) for i, f in enumerate(flood) if _ok(f) and _receiver(f) == receiver]
    bases = [(i, f["rates"]["tx_pps"]) for i, f in runs if f["monitor"] == "none"]
    out: dict[str, list[float]] = {}
    for i, f in runs:
        if f["monitor"] == "none":
            continue
        before = [pps for j, pps in bases if j < i][-1:]
        after = [pps for j, pps in bases if j > i][:1]
        if before or after:
            out.setdefault(f["monitor"], []).append(f["rates"]["tx_pps"] / mean(before + after))
    return out


def receivers(flood: list[dict[str, Any]]) -> list[str]:
    return sorted({_receiver(f) for f in flood if _ok(f)}, key=["local", "remote"].index)


def overhead_table(loads: dict[str, Any], flood: list[dict[str, Any]]) -> str:
    by = _flood_by_monitor(flood)
    lines = [
        "| monitor | CPU, 200 Mbit/s TCP | CPU, 50 short conn/s | CPU, UDP flood (alone) | "
        "peak RSS (VmHWM) |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name in MONITORS:
        flood_cpu = [core(r["cpu"]) for r in by.get(name, []) if r.get("cpu")]
        rss = [s["memory_kib"].get(name, {}).get("VmHWM") for s in loads.values() if s]
        rss += [r["memory_kib"].get("VmHWM") for r in by.get(name, [])]
        peak = max((x for x in rss if x), default=None)
        lines.append(
            f"| {name} | {pct(_cpu(loads.get('tcp200'), name))} | "
            f"{pct(_cpu(loads.get('short50'), name))} | "
            f"{pct(mean(flood_cpu) if flood_cpu else None)} | "
            f"{'–' if peak is None else f'{peak / 1024:.1f} MiB'} |"
        )
    load_txt = ", ".join(f"{k} {_load(v)}" for k, v in loads.items() if v)
    traffic = ", ".join(
        f"{k}: {v['traffic']['tx_mbit_s'] + v['traffic']['rx_mbit_s']:.0f} Mbit/s, "
        f"{v['traffic']['tx_pps'] + v['traffic']['rx_pps']:,.0f} pkt/s"
        for k, v in loads.items()
        if v and v.get("traffic")
    )
    return "\n".join(lines) + (
        "\n\nCPU = CPU seconds per wall second of the monitor process (100 % = one core) over the"
        " loaded window: the larger of utime+stime+cutime+cstime from /proc/PID/stat (threads and"
        " reaped children included, 10 ms ticks) and the threads' schedstat run time (ns); the"
        " loads ran with"
        f" all four monitors at once. Measured traffic: {traffic}."
        f" Load average at start: {load_txt}."
    )


def flood_table(flood: list[dict[str, Any]]) -> str:
    lines = [
        "| receiver | monitor (alone) | runs | packets/s sent | vs bracketing baselines "
        "(median, spread) | monitor CPU | load avg | notes |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for receiver in receivers(flood):
        by, ratios = _flood_by_monitor(flood, receiver), pps_ratios(flood, receiver)
        for name in ("none", *MONITORS):
            runs = by.get(name, [])
            if not runs:
                continue
            pps = [r["rates"]["tx_pps"] for r in runs]
            rs = ratios.get(name, [])
            change = (
                f"{100 * (median(rs) - 1):+.1f} % ({100 * (min(rs) - 1):+.1f} … "
                f"{100 * (max(rs) - 1):+.1f})"
                if rs
                else "–"
            )
            cpu = [core(r["cpu"]) for r in runs if r.get("cpu")]
            notes = [f"spread {min(pps):,.0f} – {max(pps):,.0f}"] if len(pps) > 1 else []
            counted = [r["iftop_share_of_truth"] for r in runs if r.get("iftop_share_of_truth")]
            counted += [r["hostmedic"]["flows_share_of_truth"] for r in runs if r.get("hostmedic")]
            if counted:
                share = f"{pct(min(counted), 1)} – {pct(max(counted), 1)}"
                notes.append(f"counted {share} of the bytes")
            drops = [r["hostmedic"]["capture_drops"] for r in runs if r.get("hostmedic")]
            if drops and sum(drops):
                notes.append(f"{sum(drops):,} capture drops")
            lines.append(
                f"| {receiver} | {name} | {len(runs)} | {mean(pps):,.0f} | {change} "
                f"| {pct(mean(cpu) if cpu else None)} | "
                f"{mean(r['loadavg'][0] for r in runs):.2f} | {'; '.join(notes)} |"
            )
    errors = [f"{f['monitor']}: {f['error']}" for f in flood if "error" in f]
    clients = next((f["clients"] for f in flood if "clients" in f), "?")
    return "\n".join(lines) + (
        f"\n\nFlood: {clients} × `iperf3 -u -l 16 -b 0` on one lab link, packets/s from the"
        " sending device's counters over the middle of each run; monitors one at a time, each"
        " run compared with the no-monitor runs right before and after it. Receivers: "
        + "; ".join(f"{k} = {v}" for k, v in RECEIVER_LABELS.items())
        + "."
        + (f" Failed runs: {'; '.join(errors)}." if errors else "")
    )


def rates_table(rates: dict[str, Any]) -> str:
    lines = [
        "| ticking | row | 2 s window | 10 s window | 40 s window |",
        "| --- | --- | --- | --- | --- |",
    ]
    for schedule, res in rates["schedules"].items():
        for kind in ("process", "interface"):
            cells = []
            for w in (2, 10, 40):
                r = res.get(f"{kind} tx {w}s")
                cells.append(
                    "–"
                    if r is None
                    else f"max {pct(r['max_abs_error'])}, mean {100 * r['mean_error']:+.2f} %,"
                    f" {pct(r['within_1pct'], 0)} of {r['n']} ticks ≤ 1 %"
                    + (
                        f"; bracketed max {pct(r['max_abs_bracketed'])}"
                        if "max_abs_bracketed" in r
                        else ""
                    )
                )
            lines.append(f"| {schedule} | {kind} tx | " + " | ".join(cells) + " |")
    return "\n".join(lines) + (
        f"\n\niperf3 -b {rates['rate']} (writes of {rates.get('write_size', '128K')}) to one"
        f" peer; monitors ticked {rates['seconds']} times"
        " (`absolute`: at start + n s, like `hostmedic top`'s timer; `drift`: sleep 1 s after"
        " each sample, like `hostmedic bandwidth`). Error = tool rate / true average over the"
        " same last k seconds − 1, at every tick where the window is full; bracketed: against"
        " the truth interval between the peer's counters at the tick's clock read and after"
        " the tick's reads (0 inside)."
        f" Load average at start: {_load(rates)}."
    )


def bars(
    loads: dict[str, Any],
    flood: list[dict[str, Any]],
    rates: dict[str, Any] | None,
    soak: dict[str, Any] | None,
) -> list[str]:
    """One line per bar of the brief: the figure and met / MISSED."""
    out = []

    def line(label: str, value: float | None, bar: float, fmt: str) -> None:
        if value is None:
            out.append(f"- {label}: not measured")
            return
        verdict = "met" if value <= bar else "**MISSED**"
        out.append(f"- {label}: {fmt.format(value)} (bar ≤ {fmt.format(bar)}) — {verdict}")

    line(
        "hostmedic CPU at 200 Mbit/s TCP",
        _cpu(loads.get("tcp200"), "hostmedic"),
        BARS["tcp200"],
        "{:.2%}",
    )
    line(
        "hostmedic CPU at 50 short conn/s",
        _cpu(loads.get("short50"), "hostmedic"),
        BARS["short50"],
        "{:.2%}",
    )
    hm = [core(r["cpu"]) for r in _flood_by_monitor(flood).get("hostmedic", []) if r.get("cpu")]
    line("hostmedic CPU under the UDP flood", mean(hm) if hm else None, BARS["flood"], "{:.2%}")
    for receiver in receivers(flood):
        rs = pps_ratios(flood, receiver).get("hostmedic", [])
        line(
            f"max packet rate reduced by hostmedic ({RECEIVER_LABELS[receiver]})",
            1 - median(rs) if rs else None,
            BARS["pps"],
            "{:.1%}",
        )
    if rates:
        for schedule, res in rates["schedules"].items():
            worst = [v["max_abs_error"] for k, v in res.items() if k.endswith("s") and "tx" in k]
            line(
                f"rate windows within 1 % ({schedule} ticking, worst tick)",
                max(worst) if worst else None,
                BARS["rate"],
                "{:.2%}",
            )
    if soak:
        hwm = soak.get("peak_hwm_kib")
        line(
            f"soak {soak['seconds']:.0f} s peak RSS",
            hwm / 1024 if hwm else None,
            BARS["soak"],
            "{:.1f} MiB",
        )
    return out


def soak_table(soak: dict[str, Any]) -> str:
    rss = soak.get("rss_kib") or []
    first, last = (rss[0].get("VmRSS"), rss[-1].get("VmRSS")) if rss else (None, None)
    grow = "–" if first is None or last is None else f"{(last - first) / 1024:+.2f} MiB"
    return (
        "| duration | load | RSS first → last sample | growth | peak RSS (VmHWM) | CPU | "
        "capture drops |\n| --- | --- | --- | --- | --- | --- | --- |\n"
        f"| {soak['seconds']:.0f} s | iperf3 -u -b {soak['rate']} -l {soak['size']} | "
        f"{(first or 0) / 1024:.1f} → {(last or 0) / 1024:.1f} MiB | {grow} | "
        f"{(soak.get('peak_hwm_kib') or 0) / 1024:.1f} MiB | {pct(core(soak.get('cpu')))} | "
        f"{soak.get('capture_drops')} |\n\nhostmedic alone, RSS sampled every 10 s"
        f" ({len(rss)} samples). Load average at end: {_load(soak)}."
    )
