"""Which screens exist and which roles may open them (app.py builds st.navigation from this)."""

from __future__ import annotations

from dataclasses import dataclass

from core.models import Role


@dataclass(frozen=True)
class Screen:
    path: str  # page script under pages/ (ui/__init__.py keeps Streamlit from serving them without app.py)
    title: str
    icon: str
    url_path: str
    roles: frozenset[Role]


_ALL = frozenset(Role)

SCREENS: list[Screen] = [
    Screen(
        "pages/inquiries.py",
        "문의",
        ":material/support_agent:",
        "inquiries",
        frozenset({Role.CS, Role.OWNER}),
    ),
    Screen(
        "pages/reviews.py",
        "리뷰",
        ":material/reviews:",
        "review-desk",  # /reviews is the public showcase (web/customer/showcase.py)
        frozenset({Role.CS, Role.OWNER}),
    ),
    Screen("pages/orders.py", "주문", ":material/receipt_long:", "orders", _ALL),
    Screen(
        "pages/subscriptions.py",
        "정기결제",
        ":material/autorenew:",
        "subscriptions",
        frozenset({Role.CS, Role.OWNER}),
    ),
    Screen("pages/sales.py", "매출", ":material/monitoring:", "sales", frozenset({Role.OWNER})),
    Screen(
        "pages/campaigns.py",
        "캠페인",
        ":material/campaign:",
        "campaigns",
        frozenset({Role.STAFF, Role.OWNER}),
    ),
    Screen("pages/messages.py", "메시지", ":material/chat:", "messages", _ALL),
    Screen("pages/settings.py", "설정", ":material/settings:", "settings", frozenset({Role.OWNER})),
]

# Streamlit pages a customer opens without a staff login: none. The customer pages (/pay, /go, /help)
# are plain HTML routes of server.py (web/customer), so the customer never loads Streamlit.
PUBLIC_SCREENS: list[Screen] = []


def screens_for(role: Role) -> list[Screen]:
    return [screen for screen in SCREENS if role in screen.roles]
