"""Rules of the reachability runbook's inside checks (seed 004 §目标ECS服务器内部环境)."""

from hostmedic.rules.network import (  # noqa: F401
    default_gateway,
    firewall_icmp,
    firewall_ports,
    hosts_deny,
    loopback_only,
    loopback_test,
    resolvers,
    service_crashes,
)
