"""새 문의 on 문의 (pages/inquiries.py): an inquiry copied in from KakaoTalk for a found customer, its
type suggested from the words of the text (changeable)."""

from __future__ import annotations

import streamlit as st
from sqlalchemy import Engine

from core.accounts.actor import Actor
from core.accounts.auth import phone_for
from core.db import session_scope
from core.errors import ChannelDeskError
from core.inquiries import queue as inquiry_queue
from core.inquiries import service as inquiries
from core.models.inquiries import INQUIRY_TYPE_LABELS
from ui.inquiry_desk import TYPE_OPTIONS, run


def render(engine: Engine, actor: Actor) -> None:
    """The search, the customer, the text and the type; 문의 등록 creates it through the service."""
    search = st.text_input("고객 검색 (이름 또는 전화번호)", key="inq_new_search")
    try:
        with session_scope(engine) as session:
            found = inquiry_queue.find_customers(session, search)
    except ChannelDeskError as exc:  # a search with control characters or over 100 characters
        st.error(str(exc))
        found = []
    customer_labels = {c.id: f"{c.name} · {phone_for(actor, c.phone) or '-'}" for c in found}
    customer_id = st.selectbox(
        "고객",
        list(customer_labels),
        format_func=lambda i: customer_labels[i],
        key="inq_new_customer",
        index=0 if customer_labels else None,
    )
    body = st.text_area(
        "고객 문의 내용 (카카오톡에서 옮겨 적기)", key="inq_new_body", max_chars=inquiries.MAX_TEXT
    )
    with session_scope(engine) as session:
        keywords = inquiries.type_keywords(session)
    suggested = inquiries.suggest_type(body, keywords).value
    st.caption(f"추천 유형: {INQUIRY_TYPE_LABELS[suggested]} (내용의 낱말로 추천, 바꿀 수 있습니다)")
    chosen = st.selectbox(
        "유형",
        TYPE_OPTIONS,
        index=TYPE_OPTIONS.index(suggested),
        format_func=lambda t: INQUIRY_TYPE_LABELS[t],
        key=f"inq_new_type_{suggested}",
    )
    if st.button("문의 등록", key="inq_new_submit", type="primary", disabled=customer_id is None):
        run(
            lambda s: inquiries.create_inquiry(
                s, actor, customer_id=customer_id, body=body, inquiry_type=chosen
            ),
            "문의를 등록했습니다",
        )
