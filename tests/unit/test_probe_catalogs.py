"""Message keys the probe and network code build at run time exist in every language
(the generic catalog test only sees literal keys)."""

import pytest

from hostmedic.analysis.fingerprints import KINDS
from hostmedic.cli_probe import _probe_options
from hostmedic.facts.network import TCP_OUTCOMES
from hostmedic.i18n import LANGUAGES, catalog

COLUMNS = (
    "port state attempts loss best_ms detail name type resolver rcode answers ttl host sent"
    " last_ms avg_ms worst_ms stdev_ms"
)
DYNAMIC = (
    [f"ui.probe.state.{s}" for s in TCP_OUTCOMES]
    + [f"ui.probe.status.{s}" for s in ("reachable", "partial", "unreachable")]
    + [f"ui.probe.test.{s}" for s in ("ping", "port", "http", "dns", "target")]
    + [f"ui.probe.problem.{s}" for s in ("loss", "lost", "differs", "unresolved")]
    + [f"ui.probe.kind.{k}" for k in KINDS]
    + [f"ui.probe.col.{c}" for c in COLUMNS.split()]
    + [f"finding.network.firewall_icmp.{k}.title" for k in ("blocked", "some")]
    + [f"finding.network.firewall_ports.{k}.title" for k in ("rule", "policy")]
    + [f"finding.network.resolvers.{k}.title" for k in ("none", "stub")]
    + [f"finding.network.default_gateway.{k}.title" for k in ("none", "found")]
    + [f"finding.network.service_crashes.{k}.title" for k in ("oom_kill", "unit_failed")]
    + [f"remedy.network.service_crashes.{k}" for k in ("oom_kill", "unit_failed")]
)


@pytest.mark.parametrize("language", LANGUAGES)
def test_dynamic_probe_keys_exist(language):
    assert [k for k in DYNAMIC if k not in catalog(language)] == []


def test_every_probe_option_has_help():
    import click

    @click.command()
    @_probe_options(lambda key, **_: key)
    def command(**_):
        return None

    keys = [p.help for p in command.params if isinstance(p, click.Option)]
    assert keys and [k for k in keys if k not in catalog("en")] == []
