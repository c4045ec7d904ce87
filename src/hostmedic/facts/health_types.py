"""The health category's fact names and their types (for ``--save`` / ``--from``)."""

from __future__ import annotations

from hostmedic.facts.health import CpuFacts, MemoryFacts, OomFacts
from hostmedic.facts.health_storage import (
    BusyFacts,
    DatabaseFacts,
    DeletedFacts,
    DiskFacts,
    HiddenFacts,
    PingFacts,
)

HEALTH_FACT_TYPES: dict[str, type] = {
    "health_cpu": CpuFacts,
    "health_memory": MemoryFacts,
    "health_oom": OomFacts,
    "health_disk": DiskFacts,
    "health_deleted": DeletedFacts,
    "health_hidden_mounts": HiddenFacts,
    "health_busy_mounts": BusyFacts,
    "health_databases": DatabaseFacts,
    "health_ping": PingFacts,
}
