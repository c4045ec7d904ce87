"""The decision trees of seed 004 ("cannot reach the server"), loaded from data.

``data/reachability_trees.toml`` holds both trees with the seed's node ids, the predicate
that answers each question, the yes/no children, and at the leaves the candidate causes and
the seed's remedy. This module only reads and validates that file; walking it is
:mod:`hostmedic.analysis.reachability`.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

TREES = ("private", "public")
QUESTION, ANSWER, LEAF = "question", "answer", "leaf"
NO_SYMPTOM = "0"  # the node hostmedic adds for "no probe saw a symptom"

# The fixed vocabulary of verdict.causes[].id (docs/reachability-tree.md).
CAUSES = (
    "client_local_network",
    "local_dns_hijack",
    "isp_policy",
    "icp_filing",
    "cloud_shield_zombie_shutdown",
    "cloud_shield_source_blocked",
    "green_net_block",
    "ddos_waf_interception",
    "lb_whitelist",
    "source_security_group",
    "source_host_internal",
    "target_security_group",
    "target_arrears_stopped",
    "target_host_internal",
    "app_source_acl",
    "service_down",
    "path_loss",
    "bandwidth_saturated",
    "none",
)


@dataclass(frozen=True, slots=True)
class Node:
    """One node of a tree: a question, an answer leading on, or a leaf with causes."""

    tree: str
    id: str
    kind: str
    seed: str
    label: str = ""
    question: str = ""
    ask: str = ""
    yes: str = ""
    no: str = ""
    next: str = ""
    causes: tuple[str, ...] = ()
    if_unknown: tuple[str, ...] = ()
    remedy: str = ""
    note: str = ""


@dataclass(frozen=True, slots=True)
class CauseInfo:
    """What the data says about one cause: the seed factor, remedy and separating check."""

    id: str
    factor: str
    remedy: str
    separating: str
    console: bool = False


@dataclass(frozen=True, slots=True)
class Tree:
    """One decision tree: its root, its nodes by id, and the seed sections it encodes."""

    name: str
    root: str
    seed: str
    checklist: str
    nodes: dict[str, Node]

    def node(self, node_id: str) -> Node:
        return self.nodes[node_id]

    def leaves_below(self, node_id: str) -> list[Node]:
        """Every leaf reachable from ``node_id`` (itself when it is a leaf), in seed order."""
        node = self.nodes[node_id]
        if node.kind == LEAF:
            return [node]
        children = [node.next] if node.kind == ANSWER else [node.yes, node.no]
        found: list[Node] = []
        for child in children:
            for leaf in self.leaves_below(child):
                if leaf not in found:
                    found.append(leaf)
        return found


@dataclass(frozen=True, slots=True)
class TreeData:
    trees: dict[str, Tree]
    causes: dict[str, CauseInfo]


def _node(raw: dict[str, Any]) -> Node:
    fields = {k: v for k, v in raw.items() if k in Node.__dataclass_fields__}
    for name in ("causes", "if_unknown"):
        if name in fields:
            fields[name] = tuple(fields[name])
    return Node(**fields)


def parse_tree_data(document: dict[str, Any]) -> TreeData:
    """Build the trees from the parsed TOML document (validation is the conformance test's)."""
    nodes: dict[str, dict[str, Node]] = {name: {} for name in TREES}
    for raw in document.get("node", []):
        node = _node(raw)
        nodes[node.tree][node.id] = node
    trees = {
        name: Tree(name, spec["root"], spec["seed"], spec["checklist"], nodes[name])
        for name, spec in document["tree"].items()
    }
    causes = {name: CauseInfo(id=name, **spec) for name, spec in document["cause"].items()}
    return TreeData(trees, causes)


@cache
def tree_data() -> TreeData:
    """The shipped trees and cause table (read once)."""
    text = resources.files("hostmedic").joinpath("data/reachability_trees.toml").read_text("utf-8")
    return parse_tree_data(tomllib.loads(text))
