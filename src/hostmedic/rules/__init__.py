"""Every rule package; importing this module registers all rules with the engine."""

from hostmedic.rules import bandwidth, ftp, health, network, security, weblogs  # noqa: F401
