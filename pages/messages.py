"""메시지: every customer message with its status and reason, filters, search, resend, counts per day."""

from datetime import timedelta

import streamlit as st

import ui
from core import clock
from core.accounts.auth import phone_for
from core.db import session_scope
from core.errors import ChannelDeskError
from core.messaging import service
from core.models import MessageKind, MessageStatus
from core.models.messaging import MESSAGE_STATUS_LABELS
from ui import dates, feedback
from ui.labels import template_label
from ui.tables import show_rows

KIND_LABELS = {MessageKind.INFORMATIONAL.value: "정보성", MessageKind.ADVERTISING.value: "광고"}

actor = ui.current_actor()
engine = ui.engine()
st.title("메시지")
feedback.show("msg")
changed = feedback.highlighted("msg")


@st.fragment(run_every=15)
def _daily_counts() -> None:
    ui.live_guard()
    with session_scope(engine) as session:
        days = service.daily_counts(session, days=14)
    st.subheader("일별 메시지 수 (최근 14일)")
    st.dataframe(
        [
            {
                "날짜": d["day"].isoformat(),
                **{MESSAGE_STATUS_LABELS[s]: d[s.value] for s in MessageStatus},
                "합계": sum(d[s.value] for s in MessageStatus),
            }
            for d in reversed(days)
        ],
        hide_index=True,
        width="stretch",
        key="msg_daily",
    )


_daily_counts()

st.subheader("메시지 목록")
c1, c2, c3, c4 = st.columns([2, 1, 2, 2])
statuses = c1.multiselect(
    "상태", [s.value for s in MessageStatus], format_func=lambda s: MESSAGE_STATUS_LABELS[s], key="msg_status",
    placeholder="전체",
)
kind = c2.selectbox(
    "구분", ["", *KIND_LABELS], format_func=lambda k: KIND_LABELS.get(k, "전체"), key="msg_kind"
)
query = c3.text_input("고객 검색 (이름 또는 전화번호)", key="msg_customer")
today = clock.today_kst()
since = today - timedelta(days=366 * 2)
first_day = dates.day_select(
    "시작일 (KST)", today - timedelta(days=13), key="msg_from", first=since, last=today, container=c4
)
last_day = dates.day_select("종료일 (KST)", today, key="msg_to", first=since, last=today, container=c4)

try:
    with session_scope(engine) as session:
        found = service.list_messages(
            session,
            service.MessageFilter(
                statuses=tuple(statuses),
                kinds=(kind,) if kind else (),
                customer_query=query,
                first_day=first_day,
                last_day=last_day,
            ),
        )
except ChannelDeskError as exc:  # a search with control characters or over 100 characters
    st.error(str(exc))
    found = []

if not found:
    st.info("조건에 맞는 메시지가 없습니다.")
else:
    st.caption(
        f"{len(found):,}건 (최신순, 최대 500건) · 발송 = 제공자가 접수함, 전달 = 수신 확인(전달 결과), "
        "실패 사유에는 제공자의 결과 코드와 문자 대체 발송 여부가 나옵니다."
    )
    show_rows(
        [
            {
                "번호": m.id,
                "생성": clock.format_kst(m.created_at),
                "고객": name or "-",
                "받는 번호": phone_for(actor, m.to_phone) or "-",
                "템플릿": template_label(m.template_key),
                "구분": KIND_LABELS.get(m.kind, m.kind),
                "상태": MESSAGE_STATUS_LABELS.get(m.status, m.status),
                "사유": m.reason or "",
                "시도": m.attempts,
                "예정/보류 해제": clock.format_kst(m.send_after),
                "발송": clock.format_kst(m.sent_at),
                "결과 확인": clock.format_kst(m.report_checked_at),
                "내용": m.text,
            }
            for m, name in found
        ],
        key="msg_table",
        highlight=lambda i: found[i][0].id == changed,
    )

resendable = [(m, name) for m, name in found if m.status in service.RESENDABLE]
if resendable:
    st.subheader("실패한 메시지 다시 보내기")
    labels = {
        m.id: f"{name or '-'} · {template_label(m.template_key)} · {clock.format_kst(m.created_at)} · {m.reason or ''}"[:120]
        for m, name in resendable
    }
    choice = st.selectbox("메시지", list(labels), format_func=labels.get, key="msg_resend_pick")
    st.caption("새 키로 다시 대기열에 넣습니다. 원래 메시지는 그대로 남고, 기록이 감사 로그에 남습니다.")
    if st.button("다시 보내기", key="msg_resend"):
        feedback.run(
            "msg",
            lambda session: service.resend(session, actor, choice),
            "다시 보낼 메시지를 대기열에 넣었습니다. 목록 맨 위에 표시됩니다.",
            highlight=lambda again: again.id,
        )
