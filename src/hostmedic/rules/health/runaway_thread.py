"""Rule: no thread keeps a core pegged for the whole window.

Seed 004 "CPU 跑满: 程序代码不够优化，存在死循环" — an endless loop shows as one thread at
~100 % of one core, tick after tick, whatever the rest of the process does.
"""

from __future__ import annotations

from collections.abc import Iterator

from hostmedic.engine import rule
from hostmedic.facts.health import CpuFacts
from hostmedic.model import Evidence, Finding, Severity
from hostmedic.rules.health.common import SOURCE_PROC, exe_of, failed, process_line
from hostmedic.settings import Settings

RULE = "health.runaway_thread"


@rule(RULE, category="health", runbook_ref="004 §CPU 跑满 (死循环)")
def runaway_thread(health_cpu: CpuFacts, settings: Settings) -> Iterator[Finding]:
    """No thread stays above ``runaway_thread_percent`` of a core for the window."""
    s = settings.health
    for p in health_cpu.top:
        pegged = [
            t
            for t in p.busy_threads
            if t.cpu_percent >= s.runaway_thread_percent
            and t.observed_s >= s.runaway_min_observed_s
        ]
        if not pegged:
            continue
        thread = pegged[0]
        yield failed(
            RULE,
            Severity.WARNING,
            "finding.health.runaway_thread.title",
            {
                "pid": p.pid,
                "name": p.name,
                "exe": exe_of(p),
                "tid": thread.tid,
                "thread": thread.name,
                "thread_percent": round(thread.cpu_percent),
                "seconds": round(thread.observed_s, 1),
                "threads": p.threads,
                "pegged": len(pegged),
            },
            (Evidence(SOURCE_PROC, process_line(p, health_cpu.window_s), health_cpu.read_at),),
            "remedy.health.runaway_thread",
        )
