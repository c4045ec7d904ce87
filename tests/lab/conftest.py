"""Fixtures of the namespace labs and the skip rules of ``tests/lab``.

The whole directory is skipped (with a reason) when not root or when ``ip`` is missing; the
tests that build a :class:`netlab.Lab` are also skipped when the traffic tools they drive
(``iperf3``, ``ethtool``) are missing. Labs made through the fixtures are always destroyed,
whatever the test did.
"""

from __future__ import annotations

import os
import shutil
import signal
from collections.abc import Callable, Iterator

import pytest

from tests.lab.netlab import Lab, sweep_stale

LAB_TOOLS = ("iperf3", "ethtool")


def _lab_skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "lab tests need root (network namespaces)"
    if shutil.which("ip") is None:
        return "lab tests need iproute2's `ip`"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = os.path.dirname(__file__)
    reason = _lab_skip_reason()
    missing = [tool for tool in LAB_TOOLS if shutil.which(tool) is None]
    for item in items:
        if not str(item.path).startswith(here):
            continue
        if reason is not None:
            item.add_marker(pytest.mark.skip(reason=reason))
        elif missing and "make_lab" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.skip(reason=f"lab needs {', '.join(missing)}"))


@pytest.fixture(scope="module")
def make_lab() -> Iterator[Callable[..., Lab]]:
    """Factory: ``make_lab(peers=2)`` builds a lab; call ``lab.destroy()`` when done with it.

    Whatever is left is destroyed at the end of the module, even after a failure.
    """
    sweep_stale()  # namespaces a SIGKILLed run could not delete
    labs: list[Lab] = []

    def build(peers: int = 2) -> Lab:
        lab = Lab(peers_wanted=peers)
        labs.append(lab)
        lab.build()
        return lab

    # SIGTERM (a CI timeout, `kill`) would end pytest without teardown: make it an
    # interrupt, so the labs below are still destroyed.
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield build
    finally:
        signal.signal(signal.SIGTERM, previous)
        for lab in labs:
            lab.destroy()


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@pytest.fixture
def lab(make_lab: Callable[..., Lab]) -> Iterator[Lab]:
    """A built two-peer lab (``lab.srv``, ``lab.peer(1)``, ``lab.peer(2)``) for one test."""
    built = make_lab(2)
    yield built
    built.destroy()
