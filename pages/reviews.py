"""리뷰: every submitted review with filters, answered inline (sent to the customer once, shown on the
public page), hidden with a reason when abusive, the 답변 대기 count against its target, and the
showcase's embeddable snippet for the owner to copy."""

from __future__ import annotations

import streamlit as st

import ui
from core import clock
from core.db import session_scope
from core.reviews import labels, queries, service
from ui import feedback
from ui.tables import show_rows

PER_PAGE = 20

actor = ui.current_actor()
engine = ui.engine()
st.title("리뷰")
feedback.show("rev")
changed = feedback.highlighted("rev")
now = clock.now()

with session_scope(engine) as session:
    waiting = queries.waiting(session, now)
    products = queries.products_with_reviews(session)

c1, c2, c3 = st.columns(3)
c1.metric("답변 대기", f"{waiting.count:,}건")
c2.metric("답변 기한 초과", f"{waiting.overdue:,}건")
c3.metric("답변 목표", f"영업시간 {waiting.target_hours}시간")
st.caption("답변 기한은 문의와 같은 영업시간·휴일로 셉니다. 목표는 설정 > 응답 기한·영업시간에서 바꿉니다.")

f1, f2, f3, f4 = st.columns([2, 3, 2, 2])
ratings = f1.multiselect(
    "별점", [5, 4, 3, 2, 1], format_func=lambda n: f"{n}점", key="rev_ratings", placeholder="전체"
)
product_names = dict(products)
product_id = f2.selectbox(
    "상품", [None, *product_names], format_func=lambda p: product_names.get(p, "전체"), key="rev_product"
)
answered = f3.selectbox(
    "답변", list(labels.ANSWER_FILTERS), format_func=labels.ANSWER_FILTERS.get, key="rev_answered"
)
hidden = f4.selectbox(
    "공개", list(labels.HIDDEN_FILTERS), format_func=labels.HIDDEN_FILTERS.get, key="rev_hidden"
)

with session_scope(engine) as session:
    rows = queries.listing(session, queries.ReviewFilter(tuple(ratings), product_id, answered, hidden), now)


def _state(row: queries.ReviewRow) -> str:
    if row.review.hidden:
        return labels.STATE_LABELS["hidden"]
    return labels.STATE_LABELS["answered" if row.review.answered_at else "waiting"]


show_rows(
    [
        {
            "번호": r.review.id,
            "작성": r.review.submitted_at,
            "별점": labels.stars(r.review.rating),
            "상품": r.product_name,
            "주문번호": r.order_number,
            "고객": r.customer_name,
            "내용": r.review.body[:80],
            "상태": _state(r),
            "답변 기한": r.answer_due_at,
        }
        for r in rows
    ],
    empty="조건에 맞는 리뷰가 없습니다.",
    key="rev_table",
    highlight=lambda i: rows[i].review.id == changed,
)
if len(rows) >= queries.LIST_LIMIT:
    st.caption(f"최신 {queries.LIST_LIMIT:,}건까지 보여 줍니다. 조건을 좁혀 보세요.")

if rows:
    st.subheader("답변하기")
    pages = max(1, -(-len(rows) // PER_PAGE))
    page = st.number_input("페이지", 1, pages, 1, key="rev_page") if pages > 1 else 1
    for row in rows[(page - 1) * PER_PAGE : page * PER_PAGE]:
        review = row.review
        with st.container(border=True, key=f"rev_card_{review.id}"):
            st.markdown(
                f"**{labels.stars(review.rating)}** · {ui.md_escape(row.product_name)} · "
                f"{ui.md_escape(row.customer_name)} · {clock.format_kst(review.submitted_at)} · {_state(row)}"
            )
            st.text(review.body or "(내용 없음)")
            if review.inquiry_id:
                st.caption(f"낮은 별점이라 문의 #{review.inquiry_id}가 열렸습니다 (문의 화면).")
            if review.hidden:
                st.caption(f"숨긴 사유: {ui.md_escape(review.hidden_reason or '')}")
            answer = st.text_area(
                "답변", value=review.answer or "", key=f"rev_answer_{review.id}", max_chars=2000
            )
            b1, b2 = st.columns(2)
            if b1.button("답변 고치기" if review.answered_at else "답변 보내기", key=f"rev_send_{review.id}"):
                feedback.run(
                    "rev",
                    lambda s, rid=review.id, text=answer: service.answer(
                        s, actor, rid, text, now=clock.now()
                    ),
                    "답변을 저장했습니다. 고객에게 알림으로 한 번 보내고 후기 페이지에 보여 줍니다.",
                    highlight=lambda saved: saved.id,
                )
            with b2.popover("다시 공개" if review.hidden else "숨기기"):
                reason = "" if review.hidden else st.text_input("숨기는 사유", key=f"rev_reason_{review.id}")
                if st.button("확인", key=f"rev_hide_{review.id}"):
                    feedback.run(
                        "rev",
                        lambda s, rid=review.id, why=reason, hide=not review.hidden: service.set_hidden(
                            s, actor, rid, hide, why, now=clock.now()
                        ),
                        "리뷰를 다시 공개했습니다."
                        if review.hidden
                        else "리뷰를 숨겼습니다. 공개 페이지에서 보이지 않습니다.",
                        highlight=lambda saved: saved.id,
                    )

st.subheader("후기 모음 페이지와 붙여 넣기용 코드")
if not products:
    st.info("아직 후기가 있는 상품이 없습니다.")
else:
    chosen = st.selectbox(
        "상품", list(product_names), format_func=product_names.get, key="rev_snippet_product"
    )
    url = service.review_url(str(chosen), "/reviews?product=")
    with session_scope(engine) as session:
        view = queries.showcase(session, chosen)
    st.markdown(f"공개 후기 페이지 (채널 프로필에 연결): `{url}`")
    if view is not None:
        st.caption(
            "다른 사이트에 붙여 넣는 HTML입니다. 스크립트 없이 글자만 담고, 모든 값은 이스케이프됩니다."
        )
        st.code(queries.snippet(view, url), language="html")
