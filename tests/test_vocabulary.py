"""One vocabulary: every PHI word is found as a label in text and as a mapping key, and the
collector's rule blocks are what the generator makes of it today."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from lumen_otel._redaction import Redactor, re2, vocabulary

R = Redactor()
CONFIGS = sorted((Path(__file__).resolve().parent.parent / "collector-config").glob("*.yaml"))
ROLE_KEYS = [p for p in vocabulary.PERSON_ROLES if p not in vocabulary.NOT_KEYS]


def _spellings(phrase: str) -> list[str]:
    words = phrase.split()
    camel = words[0] + "".join(w.capitalize() for w in words[1:])
    return sorted(
        {camel, "_".join(words), "-".join(words), "_".join(words).upper(), camel[0].upper() + camel[1:]}
    )


class TestEveryWordIsAKey:
    @pytest.mark.parametrize("phrase", ROLE_KEYS)
    def test_a_person_role_is_a_name_key_in_every_spelling(self, phrase: str) -> None:
        assert {s: "NAME" for s in _spellings(phrase)} == {s: R.key_kind(s) for s in _spellings(phrase)}

    @pytest.mark.parametrize(
        ("kind", "phrase"), [(k, p) for k, phrases in vocabulary.KEYS.items() for p in phrases]
    )
    def test_a_key_phrase_names_its_kind_in_every_spelling(self, kind: str, phrase: str) -> None:
        assert {s: kind for s in _spellings(phrase)} == {s: R.key_kind(s) for s in _spellings(phrase)}

    def test_only_the_technical_words_are_labels_but_not_keys(self) -> None:
        assert {"parent", "relative", "sibling"} == {
            p for p in vocabulary.PERSON_ROLES if R.key_kind(p) is None
        }


class TestEveryRoleIsALabel:
    @pytest.mark.parametrize("phrase", vocabulary.PERSON_ROLES)
    def test_a_name_after_the_role_is_masked_in_text(self, phrase: str) -> None:
        assert f"{phrase}: [REDACTED:NAME] called" == R.redact_text(f"{phrase}: Jane Doe called")

    @pytest.mark.parametrize("phrase", [p for p in vocabulary.PERSON_ROLES if p not in re2._CLINICIANS])
    def test_the_collector_rule_takes_the_same_roles(self, phrase: str) -> None:
        rule = next(p for _k, n, p, _g, _pos, _neg in re2.RE2_RULES if n == "name_after_label")
        match = re.search(rule, f"{phrase}: Jane Doe called")
        assert "Jane Doe" == (match.group(1) if match else None)

    @pytest.mark.parametrize("phrase", vocabulary.PERSON_VERBS)
    def test_a_name_after_a_person_verb_is_masked(self, phrase: str) -> None:
        assert f"{phrase} [REDACTED:NAME] today" == R.redact_text(f"{phrase} Jane Doe today")


class TestCollectorConfigsAreGenerated:
    @pytest.mark.parametrize(
        "path", [p for p in CONFIGS if "BEGIN generated" in p.read_text()], ids=lambda p: p.name
    )
    def test_the_marked_blocks_equal_what_the_generator_writes_now(self, path: Path) -> None:
        """Re-run ``python -m lumen_otel._redaction.re2 --write-collector`` after changing the rules."""
        text = path.read_text(encoding="utf-8")
        assert re2.render_collector_config(text) == text

    def test_the_gateway_and_the_local_config_carry_every_block(self) -> None:
        names = set(re2.collector_blocks())
        for path in (p for p in CONFIGS if p.name in ("gateway.yaml", "local.yaml")):
            found = set(re.findall(r"# BEGIN generated: (.+?) \(", path.read_text(encoding="utf-8")))
            assert (path.name, names) == (path.name, found)

    def test_a_stale_block_is_rewritten(self) -> None:
        begin = "# BEGIN generated: redaction values (python -m lumen_otel._redaction.re2 --write-collector)"
        stale = (
            f"    blocked_values:\n      {begin}\n      - 'old'\n      # END generated: redaction values\n"
        )
        fresh = re2.render_collector_config(stale)
        assert ("'old'" in fresh, fresh.count("\n      - '")) == (
            False,
            len(re2.collector_blocks()["redaction values"]),
        )
