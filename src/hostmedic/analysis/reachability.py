"""Walk seed 004's "cannot reach the server" trees over the merged evidence: the verdict.

:func:`walk` starts at the tree's root and asks each question's predicate. An answer
moves to the yes/no child; a missing answer stops the walk there, and the verdict says
which test would decide it. At the end the candidate causes (the leaf's, or every leaf's
below the stop) are ranked by the evidence for and against each
(:mod:`hostmedic.analysis.reach_causes`). :func:`verdict_for` is the entry point for
``hostmedic probe``: probe observations in, :class:`Verdict` out. Pure.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from hostmedic.analysis.reach_causes import SCORERS
from hostmedic.analysis.reach_checklist import ChecklistItem, checklist
from hostmedic.analysis.reach_context import Context
from hostmedic.analysis.reach_observations import Observations
from hostmedic.analysis.reach_signals import PREDICATES, abnormal_redirect, ads_injected
from hostmedic.analysis.reach_symptoms import Reason, peers_of, symptoms_of
from hostmedic.analysis.reach_tree import ANSWER, LEAF, NO_SYMPTOM, QUESTION, Node, tree_data

if TYPE_CHECKING:
    from hostmedic.facts.bandwidth import BandwidthFacts
    from hostmedic.facts.probe import Observation


@dataclass(frozen=True, slots=True)
class Step:
    """One node the walk went through, with the answer and the evidence behind it."""

    node: str
    answer: bool | None
    reasons: tuple[Reason, ...] = ()


@dataclass(frozen=True, slots=True)
class RankedCause:
    """One candidate cause: rank 1 is the most likely given the evidence."""

    id: str
    rank: int
    score: float
    evidence_for: tuple[Reason, ...]
    evidence_against: tuple[Reason, ...]
    separating_check: str  # catalog key: the inside / console check that tells it apart
    console_only: bool  # only a person at the cloud console can make that check
    remedy: str  # catalog key: the seed's remedy for this cause


@dataclass(frozen=True, slots=True)
class Verdict:
    """Where the walk ended and what is most likely wrong.

    ``node`` is the seed node id reached: a leaf when the walk completed, else the question
    it stopped at (``complete`` False), with ``decide`` naming the test that answers it.
    """

    tree: str
    node: str
    complete: bool
    steps: tuple[Step, ...]
    causes: tuple[RankedCause, ...]
    remedy: str | None  # the seed's instruction at the leaf reached
    decide: Reason | None = None
    target: str = ""

    @property
    def top(self) -> RankedCause | None:
        return self.causes[0] if self.causes else None


def focus(obs: Observations) -> Observations:
    """Make the primary vantage one that has a symptom: when the operator's own probe
    passes but merged evidence from another vantage of the same kind fails, the tree is
    about that vantage."""
    if symptoms_of(obs.primary).any:
        return obs
    failing = [v for v in peers_of(obs) if symptoms_of(v).any]
    if not failing or obs.primary is None:
        return obs
    others = (*(v for v in obs.others if v is not failing[0]), obs.primary)
    return dataclasses.replace(obs, primary=failing[0], others=others)


def _any_symptom(obs: Observations) -> bool:
    """A failed probe anywhere, or a page that differs from the one fetched elsewhere."""
    if symptoms_of(obs.primary).any or any(symptoms_of(v).any for v in peers_of(obs)):
        return True
    return bool(ads_injected(obs).value or abnormal_redirect(obs).value)


def walk(obs: Observations) -> Verdict:
    """Walk the tree of ``obs.access`` and rank the causes at the node reached."""
    data = tree_data()
    tree = data.trees[obs.access]
    obs = focus(obs)
    if not _any_symptom(obs):
        leaf = tree.node(NO_SYMPTOM)
        return Verdict(
            tree.name,
            leaf.id,
            True,
            (Step(leaf.id, None),),
            _rank(obs, list(leaf.causes)),
            leaf.remedy,
            target=obs.target,
        )
    steps: list[Step] = []
    node = tree.node(tree.root)
    while True:
        if node.kind == QUESTION:
            answer = PREDICATES[node.ask](obs)
            steps.append(Step(node.id, answer.value, answer.reasons))
            if answer.value is None:
                return Verdict(
                    tree.name,
                    node.id,
                    False,
                    tuple(steps),
                    _rank(obs, _candidates(tree.leaves_below(node.id), node.if_unknown)),
                    None,
                    answer.test,
                    obs.target,
                )
            node = tree.node(node.yes if answer.value else node.no)
        elif node.kind == ANSWER:
            steps.append(Step(node.id, True))
            node = tree.node(node.next)
        else:
            assert node.kind == LEAF
            steps.append(Step(node.id, True))
            candidates = _candidates([node], ())
            return Verdict(
                tree.name,
                node.id,
                True,
                tuple(steps),
                _rank(obs, candidates),
                node.remedy,
                target=obs.target,
            )


def _candidates(leaves: Sequence[Node], extra: Sequence[str]) -> list[str]:
    """The causes to rank, in the seed's order of mention (which breaks ties)."""
    ordered: list[str] = []
    for leaf in leaves:
        ordered += [c for c in leaf.causes if c not in ordered]
    return ordered + [c for c in extra if c not in ordered]


def _rank(obs: Observations, candidates: list[str]) -> tuple[RankedCause, ...]:
    """Score = the sum of the evidence weights; equal scores keep the seed's order, so a
    tie between causes that look the same from outside stays visible in the scores."""
    ctx = Context(obs)
    causes = tree_data().causes
    scored = []
    for order, cause in enumerate(candidates):
        reasons = SCORERS[cause](ctx)
        scored.append((round(sum(r.weight for r in reasons), 2), order, cause, reasons))
    scored.sort(key=lambda item: (-item[0], item[1]))
    return tuple(
        RankedCause(
            id=cause,
            rank=i + 1,
            score=score,
            evidence_for=tuple(r for r in reasons if r.weight > 0),
            evidence_against=tuple(r for r in reasons if r.weight < 0),
            separating_check=causes[cause].separating,
            console_only=causes[cause].console,
            remedy=causes[cause].remedy,
        )
        for i, (score, _, cause, reasons) in enumerate(scored)
    )


@dataclass(frozen=True, slots=True)
class Checklist:
    """The seed's ticket checklist for one access kind, filled from the evidence."""

    access: str
    target: str
    section: str  # the seed section it reproduces
    items: tuple[ChecklistItem, ...]


def checklist_of(obs: Observations) -> Checklist:
    """The filled 8-step checklist for ``obs.access``."""
    section = tree_data().trees[obs.access].checklist
    return Checklist(obs.access, obs.target, section, tuple(checklist(focus(obs))))


def verdict_for(
    evidence: Sequence[Observation],
    *,
    access: str | None = None,
    console: Mapping[str, str] | None = None,
    bandwidth: BandwidthFacts | None = None,
    cap_bits_per_s: float | None = None,
) -> Verdict:
    """The verdict for ``hostmedic probe``: ``evidence[0]`` is this run's observation (the
    vantage the operator asks about), the rest came from ``--evidence`` files. ``access``
    forces the private or public tree (default: private when this vantage is a ``peer``);
    ``console`` holds answers read off the cloud console; ``bandwidth`` the target's
    bandwidth facts from a merged diagnose bundle (with ``cap_bits_per_s`` when the cloud's
    cap is known)."""
    from hostmedic.analysis.reach_evidence import observations_from

    obs = observations_from(
        evidence, access=access, console=console, bandwidth=bandwidth, cap=cap_bits_per_s
    )
    return walk(obs)


def checklist_for(
    evidence: Sequence[Observation],
    *,
    access: str | None = None,
) -> Checklist:
    """The ticket checklist for ``hostmedic probe --checklist`` (same evidence rules as
    :func:`verdict_for`)."""
    from hostmedic.analysis.reach_evidence import observations_from

    return checklist_of(observations_from(evidence, access=access))
