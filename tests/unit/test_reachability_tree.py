"""Conformance of data/reachability_trees.toml with seed 004's two decision trees."""

import pytest

from hostmedic.analysis.reach_signals import PREDICATES
from hostmedic.analysis.reach_tree import ANSWER, CAUSES, LEAF, NO_SYMPTOM, QUESTION, tree_data
from hostmedic.i18n import LANGUAGES, catalog

# Every node id printed in seed 004 §通过私网/公网访问异常时排查思路: the bracketed answers
# 【…】 and the numbered questions, character for character.
SEED_IDS = {
    "private": [
        "1",
        "1-A",
        "1-A.1",
        "1-A.1-A",
        "1-A.1-B",
        "1-B",
        "1-B.1",
        "1-B.1-A",
        "1-B.1-B",
        "1-B.1-B.1",
        "1-B.1-B.1-A",
        "1-B.1-B.1-B",
        "1-B.1-B.1-B.1",
        "1-B.1-B.1-B.1-A",
        "1-B.1-B.1-B.1-B",
    ],
    "public": [
        "1.1",
        "1.1-A",
        "1.1-A.1",
        "1.1-A.1-A",
        "1.1-A.1-B",
        "1.1-B",
        "1.1-B.1",
        "1.1-B.1-A",
        "1.1-B.1-A.1",
        "1.1-B.1-A.1-A",
        "1.1-B.1-A.1-B",
        "1.1-B.1-B",
        "2.1",
        "2.1-A",
        "2.1-A.1",
        "2.1-A.1-A",
        "2.1-A.1-B",
        "2.1-B",
        "3.1",
        "3.1-A",
        "3.1-B",
        "3.1-B.1",
        "3.1-B.1-A",
        "3.1-B.1-B",
    ],
}


@pytest.mark.parametrize("name", ["private", "public"])
def test_every_seed_node_is_in_the_data_and_nothing_else(name):
    tree = tree_data().trees[name]
    assert sorted(tree.nodes) == sorted([*SEED_IDS[name], NO_SYMPTOM])


@pytest.mark.parametrize("name", ["private", "public"])
def test_children_exist_and_every_node_is_reachable(name):
    tree = tree_data().trees[name]
    seen, todo = set(), [tree.root]
    while todo:
        node = tree.node(todo.pop())
        seen.add(node.id)
        if node.kind == QUESTION:
            assert node.yes in tree.nodes and node.no in tree.nodes and node.yes != node.no
            todo += [node.yes, node.no]
        elif node.kind == ANSWER:
            assert node.next in tree.nodes
            todo.append(node.next)
        else:
            assert node.kind == LEAF
    assert seen == set(tree.nodes) - {NO_SYMPTOM}


@pytest.mark.parametrize("name", ["private", "public"])
def test_answers_are_children_named_after_their_question(name):
    """【1-A.1-A】 answers question 1-A.1: a child id is its question's id plus -A / -B."""
    tree = tree_data().trees[name]
    for node in tree.nodes.values():
        if node.kind == QUESTION:
            assert {node.yes, node.no} == {f"{node.id}-A", f"{node.id}-B"}


def test_leaves_name_causes_of_the_vocabulary_and_every_cause_is_reachable():
    data = tree_data()
    assert set(data.causes) == set(CAUSES)
    used = set()
    for tree in data.trees.values():
        for node in tree.nodes.values():
            if node.kind == LEAF:
                assert node.causes and node.remedy, node.id
            assert set(node.causes) <= set(CAUSES), node.id
            assert set(node.if_unknown) <= set(CAUSES), node.id
            used |= set(node.causes) | set(node.if_unknown)
    assert used == set(CAUSES)


def test_every_question_has_a_predicate():
    for tree in tree_data().trees.values():
        for node in tree.nodes.values():
            if node.kind == QUESTION:
                assert node.ask in PREDICATES, node.id


def _keys():
    data = tree_data()
    for tree in data.trees.values():
        for node in tree.nodes.values():
            yield from (k for k in (node.label, node.question, node.remedy) if k)
    for cause in data.causes.values():
        yield from (cause.remedy, cause.separating, f"verdict.reach.cause.{cause.id}")
    for access in ("private", "public"):
        yield from (f"verdict.reach.check.{access}.{n}" for n in range(1, 9))


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_key_of_the_data_exists_in_every_language(language):
    messages = catalog(language)
    assert [k for k in set(_keys()) if k not in messages] == []


def test_inconsistent_seed_labels_are_noted():
    """The seed's yes/no labels that contradict their questions carry a note."""
    noted = {n.id for t in tree_data().trees.values() for n in t.nodes.values() if n.note}
    for node_id in ("1-A.1-A", "1-A.1-B", "1.1-A.1-A", "1.1-A.1-B", "3.1-A"):
        assert node_id in noted
    assert {"1-B.1-B.1-B.1-A", "1-B.1-B.1-B.1-B"} <= noted
