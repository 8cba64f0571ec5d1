"""Staff accounts: who works in the shop, with which role, and what they did.

    actor.py    who is acting (staff, worker, CLI) and the role check every service makes first
    auth.py     login, passwords (argon2id), server-side sessions, throttling, accounts
    audit.py    the audit log every data-changing service writes
    screens.py  which role sees which screen
    staff.py    the staff list (read side of 설정 → 사용자)

Imports run actor <- audit <- auth: nothing here imports upwards.
"""
