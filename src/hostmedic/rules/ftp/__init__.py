"""Rules of the FTP runbook (seed 004 FTP sections: 421 errors, unreachable FTP, passive mode,
banned clients)."""

from hostmedic.rules.ftp import (  # noqa: F401
    banned_clients,
    control_port,
    data_port,
    max_clients,
    passive_address,
    passive_ports,
)
