"""The import's writes and reads in bulk, inside the caller's transaction: rows inserted in chunks
(COPY on PostgreSQL, one compiled executemany on SQLite), stored keys looked up as a set, and the
cyclic garbage collector held off while a large file is in memory. Measured in bench/import_lines.py.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import Enum
from typing import Any

from sqlalchemy import ARRAY, Column, String, Table, any_, cast, insert, literal, select
from sqlmodel import Session

CHUNK = 900  # IN-list size (SQLite allows 999 bound parameters per statement)
INSERT_CHUNK = 10_000
PG_LOOKUP_CHUNK = 20_000


def bulk_insert(session: Session, table: Table, values: list[dict[str, Any]]) -> None:
    """Bulk insert inside the caller's transaction (all or nothing), in chunks.

    Each column's bind processor is applied here, column by column (SQLAlchemy's per-row parameter
    assembly was half the import's CPU time at 100,000 rows); then SQLite gets one compiled INSERT
    through executemany and PostgreSQL a COPY (a row-at-a-time INSERT costs a round trip each).
    """
    if not values:
        return
    connection = session.connection()
    dialect = connection.dialect
    keys = list(values[0])
    compiled = insert(table).compile(dialect=dialect, column_keys=keys)
    order = list(compiled.positiontup or []) if compiled.positional else keys
    if sorted(order) != sorted(keys):  # a column default we would have to fill: let Core do it
        for start in range(0, len(values), INSERT_CHUNK):
            session.execute(insert(table), values[start : start + INSERT_CHUNK])
        return
    # dialect_impl: a TypeDecorator's own bind_processor wraps the generic impl, not the dialect's
    # (SQLite's DATETIME writes "...:SS.ffffff"; the generic one left it to sqlite3, which drops a zero
    # fraction, so imported times compared unequal to the same instant bound by a query).
    processors = [table.c[key].type.dialect_impl(dialect).bind_processor(dialect) for key in order]
    copy_sql = None
    if dialect.name == "postgresql":
        quote = dialect.identifier_preparer
        copy_sql = (
            f"COPY {quote.format_table(table)} ({', '.join(quote.quote(key) for key in order)}) FROM STDIN"
        )
    for start in range(0, len(values), INSERT_CHUNK):
        chunk = values[start : start + INSERT_CHUNK]
        columns = [
            _processed([row[key] for row in chunk], process)
            for key, process in zip(order, processors, strict=True)
        ]
        tuples = list(zip(*columns, strict=True))
        if copy_sql is not None:
            with connection.connection.driver_connection.cursor() as cursor, cursor.copy(copy_sql) as copy:  # type: ignore[union-attr]
                for row in tuples:
                    copy.write_row(row)
        else:
            params: Any = (
                tuples if compiled.positional else [dict(zip(order, row, strict=True)) for row in tuples]
            )
            connection.exec_driver_sql(compiled.string, params)


def _processed(column: list[Any], process: Callable[[Any], Any] | None) -> list[Any]:
    """Bind-process one column; repeated values (order times, statuses) are converted once."""

    def convert(value: Any) -> Any:
        value = value.value if isinstance(value, Enum) else value
        return value if process is None else process(value)

    memo: dict[Any, Any] = {None: None}
    try:
        return [memo[value] if value in memo else memo.setdefault(value, convert(value)) for value in column]
    except TypeError:  # unhashable values (JSON lists)
        return [None if value is None else convert(value) for value in column]


@contextmanager
def no_gc_pauses() -> Iterator[None]:
    """A 100,000-row import allocates ~1M small objects and no cycles: the cyclic collector would
    rescan them again and again (about a fifth of the CPU time); it runs once at the end instead."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def matching(
    session: Session, key: Column[Any], wanted: list[str], *extra: Any, where: Any = None
) -> Iterator[Any]:
    """Set-based lookup of stored keys (with `extra` columns): a chunked IN list on SQLite (at most
    999 bound parameters), one array parameter per 20,000 keys on PostgreSQL."""
    postgres = session.get_bind().dialect.name == "postgresql"
    size = PG_LOOKUP_CHUNK if postgres else CHUNK
    for start in range(0, len(wanted), size):
        chunk = wanted[start : start + size]
        test = key == any_(cast(literal(chunk, ARRAY(String)), ARRAY(String))) if postgres else key.in_(chunk)
        statement = select(key, *extra).where(test)
        if where is not None:
            statement = statement.where(where)
        if extra:
            yield from session.execute(statement)
        else:
            yield from session.execute(statement).scalars()
