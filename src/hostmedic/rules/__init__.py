"""Every rule package; importing this module registers all rules with the engine."""

import hostmedic.rules.network  # noqa: F401
from hostmedic.rules import bandwidth  # noqa: F401
