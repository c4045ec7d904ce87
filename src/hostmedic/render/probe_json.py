"""The ``hostmedic probe --json`` document (schema ``hostmedic.probe/1``, docs/probe.md).

Observations are the evidence-file dataclasses as JSON (the same shape ``--save`` writes),
so a script reads one format whether it looks at a live run or a saved file. Human text
appears only next to the key it came from (``status_text``).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from hostmedic import __version__
from hostmedic.analysis.compare import DnsDisagreement, PageDifference, Reachability
from hostmedic.analysis.fingerprints import block_pages
from hostmedic.facts.bundle import to_jsonable
from hostmedic.facts.probe import Observation
from hostmedic.i18n import Translator

PROBE_SCHEMA = "hostmedic.probe/1"


def probe_document(
    observation: Observation | None,
    evidence: list[tuple[str, Observation]],
    result: Reachability,
    exit_code: int,
    dns: list[DnsDisagreement],
    pages: list[PageDifference],
    t: Translator,
) -> dict[str, Any]:
    """Everything observed and compared, with the overall status and exit code."""
    seen = {
        fid
        for obs in ([observation] if observation else []) + [o for _f, o in evidence]
        for h in obs.http
        for fid in h.fingerprints
    }
    return {
        "schema": PROBE_SCHEMA,
        "tool": {"name": "hostmedic", "version": __version__},
        "status": result.status,
        "status_text": t(f"ui.probe.status.{result.status}"),
        "problems": [dataclasses.asdict(p) for p in result.problems],
        "exit_code": exit_code,
        "observation": to_jsonable(observation) if observation else None,
        "evidence": [{"file": path, "observation": to_jsonable(obs)} for path, obs in evidence],
        "comparisons": {
            "dns": [dataclasses.asdict(d) for d in dns],
            "pages": [dataclasses.asdict(p) for p in pages],
        },
        "fingerprints": {
            p.page_id: {"kind": p.kind, "vendor": p.vendor}
            for p in block_pages()
            if p.page_id in seen
        },
        "verdict": None,  # the seed's decision tree fills this (issue 4 §3)
    }
