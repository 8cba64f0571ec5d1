"""Which layout of the 문의 queue a browser gets (ui/device.py): the table on a computer, cards on a
phone, both (the width decides, by CSS) when the browser cannot be placed. Real User-Agent strings."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from core.accounts.actor import Actor
from tests.test_inquiries_desk import _page, queue3  # noqa: F401 (the fixture)
from ui import device

AGENTS = [
    # phones: every one carries "Mobi"
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
     "Version/18.1 Mobile/15E148 Safari/604.1", "phone"),
    ("Mozilla/5.0 (Linux; Android 14; SM-S911N) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 "
     "Mobile Safari/537.36", "phone"),
    ("Mozilla/5.0 (Linux; Android 14; SM-S911N) AppleWebKit/537.36 (KHTML, like Gecko) "
     "SamsungBrowser/26.0 Chrome/122.0.0.0 Mobile Safari/537.36", "phone"),
    ("Mozilla/5.0 (Linux; Android 14; SM-S911N Build/UP1A; wv) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Version/4.0 Chrome/131.0.0.0 Mobile Safari/537.36;KAKAOTALK 2410200", "phone"),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
     "Mobile/15E148 KAKAOTALK 10.9.0", "phone"),
    # computers: the system is named, no "Mobi"
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 "
     "Safari/537.36", "computer"),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 "
     "Safari/537.36 Edg/131.0.0.0", "computer"),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
     "Version/18.1 Safari/605.1.15", "computer"),  # also iPadOS Safari, which asks for the desktop site
    ("Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0", "computer"),
    ("Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 "
     "Safari/537.36", "computer"),
    # cannot tell: both layouts, the width picks
    ("Mozilla/5.0 (Linux; Android 14; SM-X710N) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 "
     "Safari/537.36", "both"),  # an Android tablet (no "Mobi"): wide or narrow by how it is held
    ("Python/3.11 websockets/17.4", "both"),
    ("", "both"),
    (None, "both"),
]


@pytest.mark.parametrize(("agent", "layout"), AGENTS)
def test_layout_for_real_agents(agent: str | None, layout: str) -> None:
    assert device.layout_for(agent) == layout


def _drawn(at) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    """(queue tables, card buttons) on the page: the queue's table is the one with the countdowns."""
    cards = [b for b in at.button if b.key and b.key.startswith("inq_card_")]
    return sum("남은 시간" in d.value.columns for d in at.dataframe), len(cards)


@pytest.mark.parametrize(("layout", "tables", "has_cards"), [
    ("computer", 1, False),  # the cards are not drawn at all (they were drawn and hidden every second)
    ("phone", 0, True),
    ("both", 1, True),
])
def test_the_queue_draws_only_the_layout_of_the_browser(
    monkeypatch: pytest.MonkeyPatch, sqlite_engine: Engine, sqlite_actors: dict[str, Actor],
    queue3: dict[str, int], layout: str, tables: int, has_cards: bool,  # noqa: F811
) -> None:
    monkeypatch.setattr(device, "current_layout", lambda: layout)
    at = _page(sqlite_engine, sqlite_actors["cs"])
    drawn_tables, cards = _drawn(at)
    assert drawn_tables == tables
    assert (cards == 3) if has_cards else (cards == 0)
    # Only when both are drawn does the width hide one (else a narrowed computer window shows nothing).
    styles = " ".join(h.proto.body for h in at.get("html"))
    assert ("max-width: 640px" in styles) == (layout == "both")
