"""Read an uploaded table (CSV or XLSX) row by row, as text cells, without holding it twice.

- The kind is read from the bytes, not the name: a ZIP ('PK\\x03\\x04') is XLSX, anything else CSV.
- CSV: UTF-8 (with or without BOM) is tried first, then CP949 (what Korean Excel saves); the
  encoding is checked in 1 MB steps and the rows are then decoded as they are read, so a file is
  never held as one decoded string.
- XLSX: the first sheet, read by python-calamine (13x less CPU than openpyxl's read-only mode on
  the same 100,000-line export: 4.4 s vs 56.6 s, bench/import_lines.py --xlsx; openpyxl alone
  would break the 30 s import goal); dates become
  'YYYY-MM-DD HH:MM:SS' (KST wall time, as the export shows them), whole numbers lose their '.0'.
  Merged cells (calamine's merged_cell_ranges) are refused with their ranges: a merged header names several columns at once, and a
  merged data cell holds its value only in its first cell, so neither can be read row by row.
- A file over MAX_FILE_BYTES is refused before it is read, with its size (split it, or export a
  shorter period).

Row numbers are the spreadsheet's own (the header is row 1), so errors point at what the person
sees in Excel.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any

MAX_FILE_BYTES = 50 * 1024 * 1024  # ~350,000 lines of a marketplace export; peak memory stays < 300 MB
STEP = 1 << 20


class SourceError(ValueError):
    """The file cannot be read as a table; `row` is where (1 for the file as a whole)."""

    def __init__(self, message: str, row: int = 1) -> None:
        super().__init__(message)
        self.row = row


@dataclass(frozen=True)
class Table:
    kind: str  # "csv" or "xlsx"
    encoding: str | None
    header: list[str]
    rows: Iterator[tuple[int, list[str]]]  # (row number, cells) after the header; blank rows skipped


def is_xlsx(data: bytes) -> bool:
    return data[:4] == b"PK\x03\x04"


def check_size(size: int) -> None:
    if size > MAX_FILE_BYTES:
        raise SourceError(
            f"파일이 너무 큽니다 ({size / 1024 / 1024:,.1f}MB, 최대 {MAX_FILE_BYTES // 1024 // 1024}MB). "
            "기간을 나눠 내보낸 뒤 차례로 가져오세요"
        )


def open_table(data: bytes) -> Table:
    """The header and a lazy iterator over the data rows."""
    check_size(len(data))
    if is_xlsx(data):
        header, rows = _xlsx_rows(data)
        return Table("xlsx", None, header, rows)
    encoding = detect_encoding(data)
    text = io.TextIOWrapper(io.BytesIO(data), encoding=encoding, newline="")
    reader = csv.reader(text)
    try:
        header = next(reader, None)
    except csv.Error as exc:
        raise SourceError(f"CSV 형식이 올바르지 않습니다: {exc}") from exc
    if not header or not "".join(header).strip():
        raise SourceError("빈 파일입니다 (머리글 행이 필요합니다)")
    return Table("csv", encoding, [h.strip() for h in header], _csv_rows(reader))


def preview(data: bytes, limit: int = 5) -> tuple[list[str], list[list[str]]]:
    """The header and the first `limit` data rows (for the mapping screen)."""
    table = open_table(data)
    rows: list[list[str]] = []
    for _, cells in table.rows:
        rows.append(cells)
        if len(rows) >= limit:
            break
    return table.header, rows


def detect_encoding(data: bytes) -> str:
    """'utf-8-sig' or 'cp949', checked in 1 MB steps (no decoded copy of the whole file)."""
    for encoding in ("utf-8-sig", "cp949"):
        decoder = codecs.getincrementaldecoder(encoding)()
        try:
            for start in range(0, len(data), STEP):
                decoder.decode(data[start : start + STEP])
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            continue
        return encoding
    raise SourceError("파일 인코딩을 읽을 수 없습니다. UTF-8 또는 CP949(엑셀 CSV)로 저장하세요")


def _csv_rows(reader: Any) -> Iterator[tuple[int, list[str]]]:
    row_number = 1
    try:
        for cells in reader:
            row_number += 1
            if "".join(cells).strip():
                yield row_number, cells
    except csv.Error as exc:  # a stray carriage return or NUL
        raise SourceError(f"CSV 형식이 올바르지 않습니다: {exc}", row_number + 1) from exc


def cell_text(value: Any) -> str:
    """One spreadsheet value as the text a person sees: 32000.0 → '32000', a date → '2026-11-01 14:30:00'."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, date):
        return value.strftime("%Y-%m-%d")
    if isinstance(value, time):
        return value.strftime("%H:%M:%S")
    return str(value)


# ---------------------------------------------------------------------------------------- XLSX

def _column(index: int) -> str:
    """0 → 'A', 25 → 'Z', 26 → 'AA'."""
    name = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        name = chr(65 + rest) + name
    return name


def merged_ranges(sheet: Any) -> list[tuple[str, int]]:
    """('A1:C1', first row) of every merged range of a calamine sheet, top to bottom."""
    found = []
    for (r1, c1), (r2, c2) in sheet.merged_cell_ranges or []:
        found.append((f"{_column(c1)}{r1 + 1}:{_column(c2)}{r2 + 1}", r1 + 1, c1))
    return [(ref, row) for ref, row, _ in sorted(found, key=lambda item: (item[1], item[2]))]


def _xlsx_rows(data: bytes) -> tuple[list[str], Iterator[tuple[int, list[str]]]]:
    from python_calamine import CalamineWorkbook  # imported here: only XLSX uploads need it

    try:
        sheet = CalamineWorkbook.from_filelike(io.BytesIO(data)).get_sheet_by_index(0)
    except Exception as exc:  # calamine's own error types: a damaged or encrypted file
        raise SourceError(f"XLSX 파일을 열 수 없습니다 (손상되었거나 암호가 걸린 파일): {str(exc)[:80]}") from exc
    merged = merged_ranges(sheet)
    if merged:
        in_header = [ref for ref, row in merged if row == 1]
        if in_header:
            raise SourceError(
                f"머리글에 병합된 셀이 있습니다 ({', '.join(in_header[:5])}). 병합을 풀고 "
                "열마다 이름이 하나인 머리글 한 줄로 저장하세요"
            )
        refs = ", ".join(ref for ref, _ in merged[:5])
        raise SourceError(
            f"병합된 셀이 있습니다 ({refs}{' …' if len(merged) > 5 else ''}). 병합된 셀은 첫 칸에만 "
            "값이 있어 줄마다 읽을 수 없습니다: 병합을 풀고 저장하세요",
            merged[0][1],
        )
    rows = _numbered(sheet.iter_rows(), sheet.start)
    first = next(rows, None)
    if first is None or not "".join(first[1]).strip():
        raise SourceError("빈 시트입니다 (첫 줄에 머리글이 필요합니다)")
    return [h.strip() for h in first[1]], rows


def openpyxl_rows(data: bytes) -> Iterator[tuple[int, list[str]]]:
    """The same rows through openpyxl's read-only mode (kept for the benchmark's comparison)."""
    import openpyxl

    workbook = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    return _numbered(workbook.worksheets[0].iter_rows(values_only=True), None)


def _numbered(rows: Any, start: Any) -> Iterator[tuple[int, list[str]]]:
    """(spreadsheet row number, text cells); blank rows skipped, the first row always yielded."""
    row_number = (start[0] + 1) if start else 1
    first = True
    for values in rows:
        cells = [cell_text(v) for v in values]
        if first or "".join(cells).strip():
            yield row_number, cells
        first = False
        row_number += 1
