"""Every rule package; importing this module registers all rules with the engine."""

from hostmedic.rules import (
    bandwidth,  # noqa: F401
    weblogs,  # noqa: F401
)
