"""Rule: when the CPU is full, the processes eating it are known and normal.

Seed 004 "CPU 跑满" lists the causes; each maps to evidence here: an abnormal process
(中毒或中木马, 进程有异常) → the bandwidth runbook's verdict (executable deleted, in /tmp,
a trojan path, a borrowed name) — also flagged when the CPU is not full; the web server
(Web 配置、访问异常、盗链、爬虫、CC 攻击) → its logs; the database (大量数据库操作) → the
database checks; a kernel thread (ksoftirqd: packet floods; kswapd: memory) → those
runbooks; a cloud vendor's agent → a ticket to the vendor. The thread count is shown
(检查程序最大线程数不够).
"""

from __future__ import annotations

from collections.abc import Iterator

from hostmedic.analysis.verdict import CLOUD_AGENT, SUSPICIOUS, SYSTEM, judge
from hostmedic.collectors.health.mountinfo import health_data
from hostmedic.engine import rule
from hostmedic.facts.bandwidth import ProcessUsage, Rates, Traffic
from hostmedic.facts.health import CpuFacts, ProcessCpu
from hostmedic.model import Evidence, Finding, Severity
from hostmedic.rules.health.common import SOURCE_PROC, exe_of, failed, process_line
from hostmedic.settings import Settings

RULE = "health.cpu_top_consumer"
KERNEL_THREAD_PARENT = 2  # kthreadd


def classify(p: ProcessCpu) -> tuple[str, list[tuple[str, dict[str, str]]], str]:
    """(kind, verdict clues, vendor) of a busy process: suspicious, cloud-agent, kernel,
    web, database, system or business."""
    if p.pid == KERNEL_THREAD_PARENT or p.ppid == KERNEL_THREAD_PARENT:
        return "kernel", [], ""
    verdict = judge(ProcessUsage(p.pid, p.info, Traffic(), Rates(), (), 0), 0.0)
    clues = [(c.key, dict(c.params)) for c in verdict.clues]
    if verdict.kind in (SUSPICIOUS, CLOUD_AGENT):
        return verdict.kind, clues, verdict.vendor or ""
    kinds = health_data()["processes"]
    names = {p.name, ((p.info.exe if p.info else None) or "").rsplit("/", 1)[-1]}
    for kind in ("web", "database"):
        if names & set(kinds[kind]) or any(p.name.startswith(n) for n in kinds[kind]):
            return kind, clues, ""
    return ("system" if verdict.kind == SYSTEM else "business"), clues, ""


@rule(RULE, category="health", runbook_ref="004 §CPU 跑满")
def cpu_top_consumer(health_cpu: CpuFacts, settings: Settings) -> Iterator[Finding]:
    """No suspicious process uses the CPU, and a full CPU has named, normal consumers."""
    s = settings.health
    cores = max(health_cpu.cores, 1)
    full = health_cpu.busy_percent >= s.cpu_full_percent
    named = 0
    for p in health_cpu.top:
        kind, clues, vendor = classify(p)
        share = (p.cpu_percent + p.children_cpu_percent) / cores
        if kind == SUSPICIOUS and p.cpu_percent >= s.suspicious_min_cpu_percent:
            severity = Severity.CRITICAL
        elif full and share >= s.cpu_consumer_min_share_percent:
            severity = Severity.WARNING
        else:
            continue
        named += 1
        yield failed(
            RULE,
            severity,
            f"finding.health.cpu_top_consumer.{kind}.title",
            {
                "pid": p.pid,
                "name": p.name,
                "exe": exe_of(p),
                "kind": kind,
                "vendor": vendor,
                "cpu_percent": round(p.cpu_percent + p.children_cpu_percent),
                "share_percent": round(share),
                "threads": p.threads,
                "busy_percent": health_cpu.busy_percent,
                "clues": clues,
            },
            (Evidence(SOURCE_PROC, process_line(p, health_cpu.window_s), health_cpu.read_at),),
            f"remedy.health.cpu_top_consumer.{kind}",
        )
    if full and named == 0:
        yield failed(
            RULE,
            Severity.WARNING,
            "finding.health.cpu_top_consumer.spread.title",
            {"busy_percent": health_cpu.busy_percent, "count": health_cpu.processes_end},
            tuple(
                Evidence(SOURCE_PROC, process_line(p, health_cpu.window_s), health_cpu.read_at)
                for p in health_cpu.top[:3]
            ),
            "remedy.health.cpu_top_consumer.spread",
        )
