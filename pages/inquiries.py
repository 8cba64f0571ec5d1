"""문의: the CS queue sorted by time left, live countdowns, detail with one-click actions, report.

The page is the list of sections; each section lives in a ui/ module named for what it shows.
"""

from __future__ import annotations

import streamlit as st

import ui
from core import clock
from core.db import session_scope
from core.inquiries import queue as inquiry_queue
from core.inquiries import service as inquiries
from ui import device, feedback, inquiry_detail, inquiry_new, inquiry_queue_view, inquiry_report
from ui import inquiry_desk as desk

actor = ui.current_actor()
engine = ui.engine()
st.title("문의")

# The feedback and the notices come and go; in one container they never move the elements below. A
# moved tree under the live run_every fragment made the browser fail to apply its delta (white page).
top = st.container()
with top:
    feedback.show("inq")
changed = feedback.highlighted("inq")
# The table on a computer, cards on a phone: drawn by the browser's kind (ui/device.py); where it
# cannot be told, both are drawn and the width picks one (CSS on the keyed containers).
if device.current_layout() == "both":
    st.html(
        "<style>@media (max-width: 640px) { .st-key-inq_wide { display: none; } }"
        "@media (min-width: 641px) { .st-key-inq_narrow { display: none; } }</style>"
    )
st.html("<style>.st-key-inq_beep { display: none; }</style>")  # the alert sound plays; its player is not shown

with session_scope(engine) as session:
    notices = inquiry_queue.notifications_for(session, actor, limit=20)
if notices:
    with top, st.expander(f"알림 {len(notices)}건", expanded=False, icon=":material/notifications:"):
        for notice in notices:
            cols = st.columns([6, 1])
            cols[0].text(f"{clock.format_kst(notice.created_at)}  {notice.text}")
            if cols[1].button("읽음", key=f"inq_notice_{notice.id}"):
                desk.run(
                    lambda s, n=notice.id: inquiries.mark_notification_read(s, actor, n),
                    "알림을 읽음으로 표시했습니다",
                )

tab_queue, tab_new, tab_macros, tab_report = st.tabs(["문의 큐", "새 문의", "매크로", "리포트"])

# A full run is a person looking at the page: the unseen signals in the title start again from 0.
st.session_state["inq_unseen"] = 0

with tab_queue:
    staff_names = inquiry_queue_view.staff_names(engine)
    inquiry_id = inquiry_queue_view.render(engine, actor, staff_names)
    if inquiry_id:
        inquiry_detail.render(engine, actor, inquiry_id, staff_names, changed)
with tab_new:
    inquiry_new.render(engine, actor)
with tab_macros:
    desk.macro_admin(engine, actor)
with tab_report:
    inquiry_report.render(engine)
