"""Every rule package; importing this module registers all rules with the engine."""

from hostmedic.rules import bandwidth  # noqa: F401
from hostmedic.rules import health  # noqa: F401
