"""The staff list, for 설정 → 사용자 (creating users and changing roles is core.accounts.auth's)."""

from __future__ import annotations

from sqlmodel import Session, col, select

from core.models import StaffUser


def staff_users(session: Session) -> list[StaffUser]:
    """Every staff account, active or not, in the order they were created."""
    return list(session.exec(select(StaffUser).order_by(col(StaffUser.id))).all())
