"""Conformance of the message catalogs: every key in every language, same placeholders,
and every key the code uses exists."""

import re
import string
from pathlib import Path

import pytest

from hostmedic.analysis.verdict import BUSINESS, CLOUD_AGENT, SUSPICIOUS, SYSTEM, UNKNOWN
from hostmedic.engine import registered_rules
from hostmedic.i18n import LANGUAGES, Translator, catalog

SRC = Path(__file__).resolve().parents[2] / "src" / "hostmedic"
KEY_LITERAL = re.compile(
    r"""["']((?:ui|help|finding|remedy|clue|reason|error|uncounted|verdict|rule)\.[a-z0-9_.\-]+)["']"""
)


def placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_key_exists_in_every_language(language):
    english, other = catalog("en"), catalog(language)
    assert sorted(set(english) - set(other)) == []
    assert sorted(set(other) - set(english)) == []


@pytest.mark.parametrize("language", LANGUAGES)
def test_translations_keep_the_placeholders(language):
    english, other = catalog("en"), catalog(language)
    wrong = {
        k: (placeholders(english[k]), placeholders(v))
        for k, v in other.items()
        if placeholders(english[k]) != placeholders(v)
    }
    assert wrong == {}


def test_keys_used_in_code_exist():
    english = catalog("en")
    used = set()
    for path in SRC.rglob("*.py"):
        used.update(KEY_LITERAL.findall(path.read_text("utf-8")))
    prefixes = {k.rsplit(".", 1)[0] + "." for k in english}
    missing = [
        k for k in sorted(used) if k not in english and k not in prefixes and not k.endswith(".")
    ]
    assert missing == []


def test_dynamic_keys_exist():
    english = catalog("en")
    wanted = [f"rule.{r.rule_id}" for r in registered_rules()]
    for kind in (BUSINESS, SUSPICIOUS, CLOUD_AGENT, SYSTEM, UNKNOWN):
        wanted += [
            f"finding.bandwidth.top_consumer.{kind}.title",
            f"remedy.bandwidth.top_consumer.{kind}",
            f"verdict.{kind}",
        ]
    wanted += [f"finding.bandwidth.saturation.{d}.title" for d in ("in", "out")]
    wanted += [f"ui.severity.{s}" for s in ("critical", "warning", "info")]
    assert [k for k in wanted if k not in english] == []


def test_clue_keys_in_verdict_module_exist():
    text = (SRC / "analysis" / "verdict.py").read_text("utf-8")
    keys = set(re.findall(r'"(clue\.[a-z_]+)"', text))
    assert keys and [k for k in keys if k not in catalog("en")] == []


def test_translator_fills_parameters_and_survives_missing_ones():
    t = Translator("zh_CN")
    assert "eth0" in t(
        "finding.bandwidth.saturation.out.title",
        interface="eth0",
        peak_bits_per_s="1",
        capacity_bits_per_s="2",
        percent=50,
    )
    assert t("ui.report.passed") == "通过的检查：{checks}"
    assert t("no.such.key") == "no.such.key"


def test_a_key_defined_in_two_area_files_is_an_error(tmp_path, monkeypatch):
    import hostmedic.i18n as i18n

    folder = tmp_path / "locales" / "en"
    folder.mkdir(parents=True)
    (folder / "a.toml").write_text('[ui]\nx = "one"\n', encoding="utf-8")
    (folder / "b.toml").write_text('[ui]\nx = "two"\n', encoding="utf-8")
    monkeypatch.setattr(i18n.resources, "files", lambda package: tmp_path)
    i18n.catalog.cache_clear()
    try:
        with pytest.raises(ValueError, match=r"b\.toml redefines ui\.x"):
            i18n.catalog("en")
    finally:
        i18n.catalog.cache_clear()
