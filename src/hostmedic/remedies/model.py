"""The shape every remedy shares: a plan shown before acting, the state needed to undo,
and the refusals that keep an operator from hurting the machine they are rescuing.

An action is planned (read-only: it looks at the target and refuses dangerous ones),
printed, confirmed, journaled as *started*, applied, journaled as *done*. Messages are
catalog keys with parameters, translated only when printed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Protocol

from hostmedic.errors import UsageError

Message = tuple[str, dict[str, Any]]


class Refused(UsageError):
    """The target is dangerous or wrong (pid 1, root, a loopback address…): exit 64."""


class NothingToDo(Exception):
    """The wanted state already holds (already blocked, already locked): exit 0."""

    def __init__(self, key: str, **params: Any) -> None:
        super().__init__(key)
        self.key = key
        self.params = params


class ActionFailed(Exception):
    """The system refused the change (a tool failed, a file could not be moved): exit 3."""

    def __init__(self, key: str, **params: Any) -> None:
        super().__init__(f"{key} {params}")
        self.key = key
        self.params = params


@dataclass(frozen=True, slots=True)
class FixContext:
    """Where and how actions run. ``root`` is ``/`` live or another disk's mount point
    (``--root``; process, unit and firewall actions are live-only); ``entry_id`` is the
    journal id this action will carry (quarantine folders and comment markers use it)."""

    state_dir: str
    entry_id: str
    root: str = "/"
    signal: str = "TERM"
    wait_s: float = 5.0

    @property
    def live(self) -> bool:
        return self.root == "/"

    def path(self, path: str) -> str:
        """``path`` of the machine being repaired (under ``root``)."""
        return path if self.live else os.path.join(self.root, path.lstrip("/"))


@dataclass
class Plan:
    """What an action will do (``steps``), what to keep in mind (``notes``), and the state
    it will change, recorded in the journal before acting so it can be undone."""

    action: str
    target: str
    steps: list[Message]
    before: dict[str, Any]
    reversible: bool = True
    notes: list[Message] = field(default_factory=list)


class Action(Protocol):
    """One remedy: ``plan`` (read-only, refuses dangerous targets), ``apply`` (returns the
    result to journal), and the same pair for undoing a journaled entry."""

    name: str
    reversible: bool

    def plan(self, target: str, ctx: FixContext) -> Plan: ...

    def apply(self, plan: Plan, ctx: FixContext) -> dict[str, Any]: ...

    def plan_undo(self, before: dict[str, Any], ctx: FixContext) -> Plan: ...

    def undo(self, before: dict[str, Any], ctx: FixContext) -> dict[str, Any]: ...


def require_live(ctx: FixContext, action: str) -> None:
    """Process, unit and firewall actions act on the running machine, not on a disk."""
    if not ctx.live:
        raise Refused("error.fix.live_only", action=action)
