"""The RE2 port of the rules (for the collector): RE2-compatible, matching its examples, documented."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from lumen_otel._redaction.re2 import RE2_RULES, render_markdown

DOC = Path(__file__).resolve().parent.parent / "docs" / "redaction-patterns-re2.md"
GO_CHECK = """package main

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
)

type rule struct {
	Name, Pattern string
	Pos, Neg      []string
}

func main() {
	var rules []rule
	if err := json.NewDecoder(os.Stdin).Decode(&rules); err != nil {
		panic(err)
	}
	for _, r := range rules {
		re, err := regexp.Compile(r.Pattern)
		if err != nil {
			fmt.Println("compile", r.Name, err)
			continue
		}
		for _, s := range r.Pos {
			if !re.MatchString(s) {
				fmt.Println("miss", r.Name, s)
			}
		}
		for _, s := range r.Neg {
			if re.MatchString(s) {
				fmt.Println("false", r.Name, s)
			}
		}
	}
}
"""


class TestRe2Port:
    @pytest.mark.parametrize("rule", RE2_RULES, ids=[r[1] for r in RE2_RULES])
    def test_no_look_arounds_or_backreferences(self, rule: tuple) -> None:  # type: ignore[type-arg]
        assert [] == re.findall(r"\(\?<?[=!]|\(\?P=|\\[1-9]", rule[2])

    @pytest.mark.parametrize("rule", RE2_RULES, ids=[r[1] for r in RE2_RULES])
    def test_examples_with_python_re(self, rule: tuple) -> None:  # type: ignore[type-arg]
        _kind, _name, pattern, group, pos, neg = rule
        compiled = re.compile(pattern)
        assert ([], [], True) == (
            [s for s in pos if not compiled.search(s)],
            [s for s in neg if compiled.search(s)],
            compiled.groups >= group,
        )

    def test_examples_with_go_regexp(self, tmp_path: Path) -> None:
        go = shutil.which("go")
        if go is None:
            if os.environ.get("CI", "").lower() == "true":
                pytest.fail("CI=true and no Go toolchain on PATH: .ci/run builds the collector with it")
            pytest.skip("no Go toolchain: RE2 compatibility checked with Python re only")
        (tmp_path / "go.mod").write_text("module re2check\n\ngo 1.21\n")
        (tmp_path / "main.go").write_text(GO_CHECK)
        rules = [
            {"Name": n, "Pattern": p, "Pos": list(pos), "Neg": list(neg)}
            for _k, n, p, _g, pos, neg in RE2_RULES
        ]
        result = subprocess.run(
            [go, "run", "."],
            cwd=tmp_path,
            input=json.dumps(rules),
            capture_output=True,
            text=True,
            timeout=240,
            check=False,
            env={**os.environ, "GOFLAGS": "-mod=mod", "GOTOOLCHAIN": "local"},
        )
        assert (0, "") == (result.returncode, result.stdout), result.stderr

    def test_the_docs_page_is_up_to_date(self) -> None:
        assert render_markdown() == DOC.read_text(encoding="utf-8")
