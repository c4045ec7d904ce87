"""Rules of the bandwidth runbook (seeds 000–003, and seed 004's bandwidth-full causes)."""

from hostmedic.rules.bandwidth import (  # noqa: F401
    coverage,
    saturation,
    top_consumer,
    top_talker_abroad,
)
