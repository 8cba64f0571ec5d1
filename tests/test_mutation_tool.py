"""The mutation tool's configuration (scripts/mutation.py): every configured module and test exists,
names match mutmut's, and the changed-modules run picks a module when its source or tests change."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("mutation_tool", ROOT / "scripts" / "mutation.py")
tool = importlib.util.module_from_spec(spec)
sys.modules["mutation_tool"] = tool  # dataclasses look their module up there
spec.loader.exec_module(tool)


@pytest.mark.parametrize("module", list(tool.TARGETS))
def test_every_configured_module_and_function_exists(module):
    target = tool.TARGETS[module]
    source = (ROOT / module).read_text(encoding="utf-8")
    for name in target.functions:
        assert f"def {name}(" in source, f"{module} has no function {name}"


@pytest.mark.parametrize("module", list(tool.TARGETS))
def test_every_configured_test_file_exists(module):
    for test in tool.TARGETS[module].tests:
        assert (ROOT / test).is_file(), test


def test_mutant_names_follow_mutmut():
    refunds = tool.TARGETS["core/payments/refunds.py"]
    assert "core.payments.refunds.x__reserve_refund__mutmut_*" in tool.mutant_patterns(
        "core/payments/refunds.py", refunds
    )
    assert tool.mutant_patterns("core/inquiries/sla.py", tool.TARGETS["core/inquiries/sla.py"]) == [
        "core.inquiries.sla.*"
    ]


def test_the_scratch_config_is_valid_toml_for_mutmut():
    section = tool._mutmut_section("core/payments/refunds.py", tool.TARGETS["core/payments/refunds.py"])
    config = tomllib.loads(section)["tool"]["mutmut"]
    assert config["only_mutate"] == ["core/payments/refunds.py"]
    assert config["pytest_add_cli_args_test_selection"] == list(
        tool.TARGETS["core/payments/refunds.py"].tests
    )
    assert config["pytest_add_cli_args"][-2:] == ["-m", "not postgres and not browser"]


def test_changed_modules_since_head_are_those_touched_in_the_work_tree():
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    if head.returncode != 0:
        pytest.skip("not a git checkout")
    changed = set(tool.changed_modules(head.stdout.strip()))
    assert changed <= set(tool.TARGETS)
