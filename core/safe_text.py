"""Text that crosses a trust boundary: CSV cells a spreadsheet would run, search words a database
would read as wildcards, control characters nothing should store."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from typing import Any

from core.errors import ValidationFailed

# A cell starting with one of these is a formula in Excel, LibreOffice and Google Sheets (tab and CR
# too: some importers strip them first), e.g. a customer name `=HYPERLINK("https://phish", "환불")`.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
MAX_QUERY_CHARS = 100  # a name, a phone number or an order number; longer is not a search


def csv_cell(value: Any) -> Any:
    """A value as a spreadsheet must show it: text starting like a formula gets a leading `'`, which
    Excel and Sheets display as plain text. Numbers stay numbers (a refund of -1000 is no formula)."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def csv_text(header: Sequence[Any] | None, rows: Iterable[Sequence[Any]]) -> str:
    """Every CSV download goes through here, so no cell reaches a spreadsheet as a formula."""
    out = io.StringIO()
    writer = csv.writer(out)
    if header is not None:
        writer.writerow([csv_cell(cell) for cell in header])
    for row in rows:
        writer.writerow([csv_cell(cell) for cell in row])
    return out.getvalue()


def has_control_chars(text: str) -> bool:
    """NUL and other C0/C1 control characters (tab and newline included): never typed on purpose into
    a name or a search, and PostgreSQL refuses NUL outright (an uncaught DataError)."""
    return any(ord(ch) < 32 or 127 <= ord(ch) < 160 for ch in text)


def search_words(query: str | None) -> str:
    """A typed search, checked at the edge: trimmed, at most MAX_QUERY_CHARS, no control characters.
    Use it with SQLAlchemy's `contains(..., autoescape=True)` so % and _ match themselves."""
    text = (query or "").strip()
    if has_control_chars(text):
        raise ValidationFailed("검색어에 쓸 수 없는 문자(제어 문자)가 있습니다")
    if len(text) > MAX_QUERY_CHARS:
        raise ValidationFailed(f"검색어는 {MAX_QUERY_CHARS}자까지입니다")
    return text
