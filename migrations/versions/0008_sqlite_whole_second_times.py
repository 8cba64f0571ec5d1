"""sqlite whole-second times: imported times written as "YYYY-MM-DD HH:MM:SS" get SQLAlchemy's
".ffffff" fraction, so they compare equal to the same instant bound by a query

Revision ID: 0008
Revises: 0007
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":  # PostgreSQL stores timestamptz: nothing to mend
        return
    inspector = sa.inspect(bind)
    for table in inspector.get_table_names():
        for column in inspector.get_columns(table):
            if isinstance(column["type"], sa.DateTime):
                name = bind.dialect.identifier_preparer.quote(column["name"])
                quoted = bind.dialect.identifier_preparer.quote(table)
                op.execute(
                    f"UPDATE {quoted} SET {name} = {name} || '.000000' "  # noqa: S608 - names from the schema
                    f"WHERE typeof({name}) = 'text' AND length({name}) = 19"
                )


def downgrade() -> None:
    """Nothing to undo: the fraction is what SQLAlchemy itself writes."""
