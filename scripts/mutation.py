"""Mutation testing (mutmut) of the code where money, the law and deadlines live.

Each configured module is mutated one small, plausible mistake at a time (`>` for `>=`, a dropped
condition, another constant) and its tests are run against every mutant; a mutant the tests do
not notice ("survived") is a missing test. Too slow for every commit: scripts/mutation.sh runs it
on the modules changed since a commit (bench/README.md has the scores and run times).

One module at a time, each in a scratch copy of the project (mutmut writes a mutants/ tree next to
its pyproject.toml), with the tests of that module only. Equivalent mutants (no test can tell them
apart) are excluded in the source with `# pragma: no mutate` and a one-line reason.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COPIED = ("core", "tests", "data", "migrations", "alembic.ini", "pyproject.toml")
MIN_SCORE = 90.0


@dataclass(frozen=True)
class Target:
    """A module to mutate: the tests that guard it and, for big modules, the functions in scope."""

    tests: tuple[str, ...]
    functions: tuple[str, ...] = ()  # empty: every function of the module
    pytest_args: tuple[str, ...] = ()
    note: str = ""
    shared_tests: tuple[str, ...] = field(default=())  # changing these re-runs the module too


SQLITE_ONLY = ("-m", "not postgres and not browser")

TARGETS: dict[str, Target] = {
    "core/messaging/compliance.py": Target(
        tests=("tests/messaging/test_compliance_law.py", "tests/messaging/test_rules.py"),
    ),
    "core/payments/refunds.py": Target(
        tests=("tests/payments/test_refund_rules.py", "tests/payments/test_refunds.py"),
        functions=(
            "refund_payment",
            "_reserve_refund",
            "refund_tax_free_amount",
            "refundable_amount",
            "order_refunded_amount",
        ),
        pytest_args=SQLITE_ONLY,
        note="the refund path up to the gateway call (PostgreSQL runs of the same tests are left out)",
    ),
    "core/payments/orders.py": Target(
        tests=("tests/payments/test_refund_rules.py",),
        functions=("check_amount",),
        pytest_args=SQLITE_ONLY,
        note="the amount check every payment and refund goes through",
    ),
    "core/inquiries/sla.py": Target(tests=("tests/test_sla.py", "tests/test_sla_rules.py")),
    "core/billing/dates.py": Target(
        tests=("tests/test_billing_dates.py", "tests/test_billing_dates_rules.py")
    ),
    "core/payments/gateways/http.py": Target(
        tests=(
            "tests/payments/test_gateway_http.py",
            "tests/payments/test_gateway_clients.py",
            "tests/payments/test_router_faults.py",
        ),
        pytest_args=SQLITE_ONLY,
        note="the gateway answer classification",
    ),
    "core/campaigns/segments.py": Target(
        tests=("tests/test_segment_rules.py",),
        functions=(
            "_int",
            "_ids",
            "_texts",
            "_date",
            "_period",
            "_rules_lists",
            "_check_values",
            "contradictions",
        ),
        note="the segment rules: reading, checking and contradictions (the SQL they become is not mutated)",
    ),
    "core/analytics/rules.py": Target(
        tests=("tests/test_analytics_figures.py",),
        functions=(
            "kst_day",
            "month_start",
            "months_between",
            "add_months",
            "period_start",
            "ratio",
            "rounded_div",
            "change",
            "check_range",
            "previous_range",
            "split_amount",
            "_median_of_counts",
        ),
        note="the figure arithmetic (ratios, changes, periods, splits, medians)",
    ),
    "core/analytics/customers.py": Target(
        tests=("tests/test_analytics_figures.py",),
        functions=("monthly_amount",),
        note="a subscription's amount per month (the MRR arithmetic; the rest of the module reads the store)",
    ),
}


def mutant_patterns(module: str, target: Target) -> list[str]:
    """mutmut's names are core.mod.x_function__mutmut_N (methods: core.mod.xǁClassǁmethod__mutmut_N)."""
    dotted = module.removesuffix(".py").replace("/", ".")
    if not target.functions:
        return [f"{dotted}.*"]
    return [f"{dotted}.x_{name}__mutmut_*" for name in target.functions]


def changed_modules(base: str) -> list[str]:
    """Configured modules whose source or tests changed since `base` (committed or not)."""
    out = subprocess.run(
        ["git", "diff", "--name-only", base, "--"], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout.split()
    untracked = subprocess.run(
        ["git", "ls-files", "--others", "--exclude-standard"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    changed = set(out) | set(untracked)
    return [m for m, t in TARGETS.items() if changed & {m, *t.tests, *t.shared_tests}]


def _mutmut_section(module: str, target: Target) -> str:
    def toml_list(items: tuple[str, ...] | list[str]) -> str:
        return "[" + ", ".join(json.dumps(i) for i in items) + "]"

    return (
        "\n[tool.mutmut]\n"
        'source_paths = ["core/"]\n'
        f"only_mutate = {toml_list([module])}\n"
        f"pytest_add_cli_args_test_selection = {toml_list(target.tests)}\n"
        f"pytest_add_cli_args = {toml_list(['-p', 'no:cacheprovider', '-p', 'no:randomly', *target.pytest_args])}\n"
        'also_copy = ["data/", "migrations/", "alembic.ini"]\n'
    )


def _scratch(module: str, target: Target, parent: Path) -> Path:
    work = parent / module.replace("/", "_")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".hypothesis")
    for name in COPIED:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, work / name, ignore=ignore)
        elif source.exists():
            shutil.copy2(source, work / name)
    with (work / "pyproject.toml").open("a", encoding="utf-8") as config:
        config.write(_mutmut_section(module, target))
    return work


def run_module(module: str, target: Target, parent: Path, jobs: int, show: int) -> dict[str, object]:
    work = _scratch(module, target, parent)
    patterns = mutant_patterns(module, target)
    started = time.monotonic()
    mutmut = [sys.executable, "-m", "mutmut"]
    run = subprocess.run(
        [*mutmut, "run", "--max-children", str(jobs), *patterns],
        cwd=work,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    seconds = time.monotonic() - started
    listing = subprocess.run(
        [*mutmut, "results", "--all", "true"], cwd=work, capture_output=True, text=True
    ).stdout
    statuses: dict[str, str] = {}
    for line in listing.splitlines():
        name, _, status = line.strip().rpartition(": ")
        if name and any(fnmatch.fnmatchcase(name, p) for p in patterns):
            statuses[name] = status
    counts: dict[str, int] = {}
    for status in statuses.values():
        counts[status] = counts.get(status, 0) + 1
    killed = counts.get("killed", 0) + counts.get("timeout", 0)
    total = sum(counts.values())
    score = 100.0 * killed / total if total else 0.0
    survivors = sorted(n for n, s in statuses.items() if s not in ("killed", "timeout"))
    print(f"\n== {module}: {killed}/{total} killed = {score:.1f}% in {seconds:.0f} s ({counts})")
    if run.returncode != 0 and not total:
        print(run.stdout[-3000:], run.stderr[-3000:], sep="\n")
    for name in survivors[:show]:
        diff = subprocess.run([*mutmut, "show", name], cwd=work, capture_output=True, text=True).stdout
        changed = [line for line in diff.splitlines() if re.match(r"^[-+][^-+]", line)]
        print(f"  {statuses[name]}: {name}\n    " + "\n    ".join(changed))
    return {
        "module": module,
        "killed": killed,
        "total": total,
        "score": round(score, 1),
        "seconds": round(seconds),
        "counts": counts,
        "survivors": survivors,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--since", help="only the modules changed since this commit")
    parser.add_argument("--module", action="append", help="only this module (repeatable)")
    parser.add_argument("--jobs", type=int, default=int(os.environ.get("MUTATION_JOBS", "1")))
    parser.add_argument("--show", type=int, default=30, help="survivors to print per module")
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--keep", action="store_true", help="keep the scratch copies (to browse survivors)")
    args = parser.parse_args(argv)

    modules = list(TARGETS)
    if args.module:
        unknown = set(args.module) - set(TARGETS)
        if unknown:
            parser.error(f"not configured: {sorted(unknown)}; configured: {modules}")
        modules = args.module
    if args.since:
        modules = [m for m in modules if m in changed_modules(args.since)]
        if not modules:
            print(f"no configured module changed since {args.since}")
            return 0
    parent = Path(tempfile.mkdtemp(prefix="channeldesk-mutation-"))
    started = time.monotonic()
    results = []
    try:
        for module in modules:
            results.append(run_module(module, TARGETS[module], parent, args.jobs, args.show))
    finally:
        if args.keep:
            print(f"\nscratch copies kept in {parent}")
        else:
            shutil.rmtree(parent, ignore_errors=True)
    total_seconds = time.monotonic() - started
    print("\n| module | killed / all | score | time |\n|---|---|---|---|")
    for r in results:
        print(f"| {r['module']} | {r['killed']} / {r['total']} | {r['score']}% | {r['seconds']} s |")
    print(f"\nall: {total_seconds:.0f} s")
    if args.json:
        args.json.write_text(json.dumps({"results": results, "seconds": round(total_seconds)}, indent=2))
    below = [r["module"] for r in results if r["score"] < MIN_SCORE]
    if below:
        print(f"below {MIN_SCORE:.0f}%: {below}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
