"""Worker entry points of the reviews domain. The review request and reminder live with the other
post-purchase automations (core.messaging.automations, below this package); this job hands them the
review links they carry, so messaging never imports reviews."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine

from core.messaging import automations
from core.reviews import service


def review_requests(engine: Engine, now: datetime) -> dict[str, int]:
    """Ask for reviews and remind once (automations' rules), each message linking to /review?t=…"""
    return automations.review_requests(engine, now, review_link=service.issue_links)
