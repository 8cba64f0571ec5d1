"""Staff accounts: who works in the shop, with which role.

    staff.py    the staff list (read side of 설정 → 사용자)

Still at core/'s root, to move here after the branches that edit them are merged: auth.py (login,
passwords, roles), audit.py, screens.py (which role sees which screen).
"""
