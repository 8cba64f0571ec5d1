"""The first run of a fresh server: ui/__init__.py's pages-folder switch raises a rerun while the
module is being imported, and every session that started in the same instant is handed the module as
it stood then (Python gives a waiting importer the half-run module when the import fails). So the
switch must come after every definition: called at the top, 19 of 20 staff sessions opened at once
failed their first run with "module 'ui' has no attribute 'engine'" (seen in bench/customer_pages.py
--desk-sessions 20's server log)."""

from __future__ import annotations

import ast

from tests.test_layout import ROOT


def test_the_first_run_switch_is_the_last_statement_of_ui() -> None:
    tree = ast.parse((ROOT / "ui" / "__init__.py").read_text(encoding="utf-8"))
    last = tree.body[-1]
    assert isinstance(last, ast.Expr) and ast.unparse(last) == "_serve_every_page_through_app()"
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and ast.unparse(n.func) == "_serve_every_page_through_app"]
    assert len(calls) == 1
