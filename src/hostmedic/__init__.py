"""hostmedic: cloud-server troubleshooting runbooks turned into one command."""

__version__ = "0.1.0"
