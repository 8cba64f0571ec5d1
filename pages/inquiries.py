"""문의: the CS queue sorted by time left, live countdowns, detail with one-click actions, report."""

from __future__ import annotations

from datetime import datetime, timedelta

import streamlit as st

import ui
from core import clock
from core.accounts.auth import phone_for
from core.db import session_scope
from core.errors import ChannelDeskError
from core.inquiries import panel as inquiry_panel
from core.inquiries import queue as inquiry_queue
from core.inquiries import report as sla_report
from core.inquiries import service as inquiries
from core.inquiries import sla
from core.models.inquiries import INQUIRY_STATUS_LABELS, INQUIRY_TYPE_LABELS
from core.money import format_krw
from ui import feedback
from ui import inquiry_desk as desk
from ui.labels import gateway_label, iso_week_text

actor = ui.current_actor()
engine = ui.engine()
st.title("문의")

# Words, not emoji (an emoji renders as □ on a PC without an emoji font); the card list adds a
# colored badge with a Material icon, which Streamlit ships as a font of its own.
STATE_BADGES = {"breached": "초과", "at_risk": "임박", "on_track": "여유", "paused": "고객 대기"}
STATE_STYLE = {
    "breached": ("red", "error"),
    "at_risk": ("orange", "schedule"),
    "on_track": ("green", "check_circle"),
    "paused": ("gray", "pause_circle"),
}
TYPE_COLOR = "blue"
WEEKDAYS = "월화수목금토일"


def state_badge(state: str) -> str:
    """`:red-badge[:material/error: 초과]`: a colored badge markdown renders without emoji."""
    color, icon = STATE_STYLE[state]
    return f":{color}-badge[:material/{icon}: {STATE_BADGES[state]}]"

TYPE_OPTIONS = list(INQUIRY_TYPE_LABELS)
EVENT_LABELS = {
    "created": "고객 문의",
    "customer_message": "고객 메시지",
    "reply": "답변",
    "note": "내부 메모",
    "wait_customer": "고객 응답 대기",
    "resolve": "해결",
    "reopen": "다시 열기",
    "assign": "배정",
    "receipt": "영수증 발송",
    "refund": "환불",
    "type_change": "유형 변경",
}


def _short_due(at: datetime | None) -> str:
    """A deadline as people say it, short enough for a metric card: "12월 4일(금) 14:30"."""
    if at is None:
        return "일시정지"
    local = clock.to_kst(at)
    return f"{local.month}월 {local.day}일({WEEKDAYS[local.weekday()]}) {local:%H:%M}"


def _run(action, success: str, item: int | None = None) -> None:  # type: ignore[no-untyped-def]
    """Call one core service in its own transaction; the result as a toast, the inquiry marked."""
    feedback.run("inq", action, success, highlight=lambda _: item)


# The feedback and the notices come and go; in one container they never move the elements below. A
# moved tree under the live run_every fragment made the browser fail to apply its delta (white page).
top = st.container()
with top:
    feedback.show("inq")
changed = feedback.highlighted("inq")
# One layout per width: the table on a desktop, cards on a phone (CSS on the keyed containers).
st.html(
    "<style>@media (max-width: 640px) { .st-key-inq_wide { display: none; } }"
    "@media (min-width: 641px) { .st-key-inq_narrow { display: none; } }"
    ".st-key-inq_beep { display: none; }</style>"  # the alert sound plays; its player is not shown
)

with session_scope(engine) as session:
    notices = inquiry_queue.notifications_for(session, actor, limit=20)
if notices:
    with top, st.expander(f"알림 {len(notices)}건", expanded=False, icon=":material/notifications:"):
        for notice in notices:
            cols = st.columns([6, 1])
            cols[0].text(f"{clock.format_kst(notice.created_at)}  {notice.text}")
            if cols[1].button("읽음", key=f"inq_notice_{notice.id}"):
                _run(
                    lambda s, n=notice.id: inquiries.mark_notification_read(s, actor, n),
                    "알림을 읽음으로 표시했습니다",
                )

CARD_LIMIT = 30  # a phone shows the most urgent; the live fragment redraws them every second
tab_queue, tab_new, tab_macros, tab_report = st.tabs(["문의 큐", "새 문의", "매크로", "리포트"])

# A full run is a person looking at the page: the unseen signals in the title start again from 0.
st.session_state["inq_unseen"] = 0


def _request_open(inquiry_id: int) -> None:
    """A tapped card / selected row / j·k: the next full run opens that inquiry (see _take_open_request)."""
    st.session_state["inq_open_req"] = inquiry_id


def _take_open_request(ids: list[int]) -> None:
    """On a full run, before the picker exists: open the requested inquiry (in the list: the picker;
    otherwise by number, e.g. a new inquiry the live table showed before this run's query)."""
    wanted = st.session_state.pop("inq_open_req", None)
    if wanted is None:
        return
    if wanted in ids:
        st.session_state["inq_pick"] = wanted
        st.session_state["inq_open_id"] = 0
    else:
        st.session_state["inq_open_id"] = wanted


def _step(ids: list[int], delta: int) -> None:
    """j / k: the next or previous inquiry of the queue, opened at once."""
    if not ids:
        return
    current = st.session_state.get("inq_pick")
    position = ids.index(current) if current in ids else -delta
    _request_open(ids[max(0, min(len(ids) - 1, position + delta))])


def _countdown(row: inquiry_queue.QueueRow, now: datetime) -> str:
    left = row.seconds_left(now)
    if left is None:
        return "일시정지"
    if left < 0:
        return f"{sla.format_duration(timedelta(seconds=-left))} 초과"
    return sla.format_duration(timedelta(seconds=left))


def _table(rows: list[inquiry_queue.QueueRow], now: datetime) -> list[dict[str, object]]:
    return [
        {
            "번호": row.id,
            "상태": STATE_BADGES[row.state(now).value],
            "남은 시간": _countdown(row, now),
            "목표": "첫 응답" if row.target == "first_response" else "해결",
            "유형": INQUIRY_TYPE_LABELS.get(row.type, row.type),
            "고객": row.customer_name,
            "제목": row.subject,
            "담당": row.assignee_name or "미배정",
            "기한": clock.format_kst(row.due_at, with_seconds=True),
        }
        for row in rows
    ]


TABLE_COLUMNS = {
    "번호": st.column_config.NumberColumn(width="small", format="%d"),
    "제목": st.column_config.TextColumn(width="large"),
    "기한": st.column_config.TextColumn(width="medium"),
}


@st.cache_data(show_spinner=False)
def _beep() -> bytes:
    """A 0.25 s 880 Hz tone as WAV, made here (no sound file to ship, no JavaScript)."""
    import io
    import math
    import struct
    import wave

    rate = 8000
    frames = b"".join(
        struct.pack("<h", int(9000 * math.sin(2 * math.pi * 880 * i / rate) * (1 - i / (rate / 4))))
        for i in range(rate // 4)
    )
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(frames)
    return buffer.getvalue()


# --------------------------------------------------------------------------- queue
with tab_queue:
    with session_scope(engine) as session:
        staff = inquiry_queue.assignable_staff(session)
    staff_names = {u.id: u.display_name for u in staff}
    with st.container(horizontal=True, key="inq_toggles"):  # one line on a phone too
        mine = st.toggle("내 문의", key="inq_f_mine", help="나에게 배정된 문의만 봅니다")
        bulk_mode = st.toggle(
            "여러 건 선택", key="inq_bulk", help="표에서 여러 문의를 골라 한 번에 배정·유형 변경·해결"
        )
        sound = st.toggle(
            "알림음", key="inq_sound", help="새 문의나 기한 초과 때 짧은 소리 (브라우저가 막으면 화면을 한 번 누른 뒤부터)"
        )
    active = sum(bool(st.session_state.get(k)) for k in ("inq_f_type", "inq_f_state")) + (
        st.session_state.get("inq_f_assignee", "all") != "all"
    )
    filters = st.expander(f"필터 · {active}개 적용" if active else "필터", icon=":material/filter_list:")
    f1, f2, f3, f5 = filters.columns([3, 3, 2, 1])
    chosen_types = f1.multiselect(
        "유형", TYPE_OPTIONS, format_func=lambda t: INQUIRY_TYPE_LABELS[t], key="inq_f_type", placeholder="전체"
    )
    chosen_states = f2.multiselect(
        "상태", list(STATE_BADGES), format_func=lambda s: STATE_BADGES[s], key="inq_f_state", placeholder="전체"
    )
    assignee_choice = f3.selectbox(
        "담당자",
        ["all", "none", *staff_names],
        format_func=lambda v: {"all": "전체", "none": "미배정"}.get(v, staff_names.get(v, v)),
        key="inq_f_assignee",
        disabled=mine,
    )
    shown = f5.selectbox("표시", [50, 100, 200, 500], index=1, key="inq_f_limit")
    assignee_id = actor.id if mine else (assignee_choice if isinstance(assignee_choice, int) else None)
    query = {
        "types": chosen_types,
        "states": chosen_states,
        "assignee_id": assignee_id,
        "unassigned": (assignee_choice == "none" and not mine),
        "limit": shown,
    }
    with session_scope(engine) as session:
        version = inquiry_queue.signals(session)
        rows, total = inquiry_queue.queue(session, clock.now(), **query)
    ids = [row.id for row in rows]
    _take_open_request(ids)
    st.session_state["inq_live_rows"] = (version.last_event_id, rows, total)
    st.session_state.setdefault("inq_seen_inquiry", version.last_inquiry_id)

    def _signals(live_rows: list[inquiry_queue.QueueRow], now: datetime) -> None:
        """New inquiries and breaches since the last tick: a toast, +1 in the tab title, optional sound."""
        fresh: list[str] = []
        with session_scope(engine) as session:
            current = inquiry_queue.signals(session)
            seen = st.session_state.get("inq_seen_inquiry", current.last_inquiry_id)
            arrived = inquiry_queue.new_since(session, seen) if current.last_inquiry_id > seen else []
            if current.last_event_id != st.session_state["inq_live_rows"][0]:
                # Something changed (a new inquiry, a colleague's action): the table follows at once.
                fresh_rows, fresh_total = inquiry_queue.queue(session, now, **query)
                st.session_state["inq_live_rows"] = (current.last_event_id, fresh_rows, fresh_total)
        st.session_state["inq_seen_inquiry"] = max(seen, current.last_inquiry_id)
        if arrived:
            first_id, first_type = arrived[0]
            more = f" 외 {len(arrived) - 1}건" if len(arrived) > 1 else ""
            fresh.append(f"새 문의: {first_id}번 {INQUIRY_TYPE_LABELS.get(first_type, '기타 문의')}{more}")
            st.session_state["inq_unseen"] += len(arrived)
        # A breach is a row that crossed its deadline while this page watched (not one already late).
        watched = st.session_state.get("inq_watch", {})
        breached = {r.id for r in live_rows if r.state(now) == sla.SlaState.BREACHED}
        crossed = sorted(i for i in breached if watched.get(i) is False)
        st.session_state["inq_watch"] = {r.id: r.id in breached for r in live_rows}
        if crossed:
            names = ", ".join(f"{i}번" for i in crossed[:3]) + (f" 외 {len(crossed) - 3}건" if len(crossed) > 3 else "")
            fresh.append(f"기한 초과: {names} 문의")
            st.session_state["inq_unseen"] += len(crossed)
        for text in fresh:
            st.toast(text, icon=":material/notifications_active:", duration="long")
        unseen = st.session_state["inq_unseen"]
        st.set_page_config(page_title=f"({unseen}) 문의 · ChannelDesk" if unseen else "문의 · ChannelDesk")
        if fresh and sound:
            with st.container(key="inq_beep"):
                st.audio(_beep(), format="audio/wav", autoplay=True)

    @st.fragment(run_every=1)
    def _live_queue() -> None:
        """Each second: countdowns from the cached deadlines, and two max() lookups for new inquiries and
        changes (the table re-reads only when something changed). A tap or a selected row opens."""
        ui.live_guard()
        if "inq_open_req" in st.session_state:  # a card tapped in this fragment: open it (full run)
            st.rerun(scope="app")
        now = clock.now()
        _signals(st.session_state["inq_live_rows"][1], now)
        _, live_rows, live_total = st.session_state["inq_live_rows"]
        previous_ids = st.session_state.get("inq_shown_ids", [])
        if live_rows:
            with st.container(key="inq_wide"):
                generation = st.session_state.get("inq_table_gen", 0)
                event = st.dataframe(
                    _table(live_rows, now),
                    hide_index=True,
                    width="stretch",
                    key=f"inq_queue_table_{generation}",
                    on_select="rerun",
                    # A click on any cell (single-cell) or on the row's box at the left (single-row).
                    selection_mode=["single-row", "single-cell"],
                    column_config=TABLE_COLUMNS,
                )
                picked_rows = []
                if event is not None:
                    picked_rows = list(event.selection.rows) or [cell[0] for cell in event.selection.cells]
                if picked_rows and picked_rows[0] < len(previous_ids):
                    # The row the person saw (the previous draw), then a fresh table without a selection:
                    # a selection kept across redraws would point at another inquiry once rows move.
                    _request_open(previous_ids[picked_rows[0]])
                    st.session_state["inq_table_gen"] = generation + 1
                    st.rerun(scope="app")
                st.caption("행을 누르면 그 문의가 열립니다 · 단축키 J 다음, K 이전")
            with st.container(key="inq_narrow"):
                for row in live_rows[:CARD_LIMIT]:
                    state_value = row.state(now).value
                    with st.container(border=True, key=f"inq_card_box_{row.id}"):
                        st.markdown(
                            f"**{row.id}번** {state_badge(state_value)} "
                            f":{TYPE_COLOR}-badge[{INQUIRY_TYPE_LABELS.get(row.type, '기타')}] "
                            f"· 남은 {_countdown(row, now)}"
                        )
                        st.markdown(f"{ui.md_escape(row.customer_name)} · {ui.md_escape(row.subject)}")
                        st.button(
                            f"{row.id}번 문의 열기",
                            key=f"inq_card_{row.id}",
                            on_click=_request_open,
                            args=(row.id,),
                            width="stretch",
                        )
                if len(live_rows) > CARD_LIMIT:
                    st.caption(f"위 {CARD_LIMIT}건 외 {len(live_rows) - CARD_LIMIT:,}건은 필터로 좁혀 보세요.")
        else:
            st.info("조건에 맞는 열린 문의가 없습니다.")
        st.session_state["inq_shown_ids"] = [row.id for row in live_rows]
        st.caption(
            f"열린 문의 {live_total:,}건 중 {len(live_rows):,}건 표시 · {clock.format_kst(now, with_seconds=True)} 기준"
        )

    if bulk_mode:
        # A still table while choosing: rows never move under the checkboxes. A changed list clears the choice.
        if st.session_state.get("inq_bulk_ids") != ids:
            st.session_state["inq_bulk_ids"] = ids
            st.session_state["inq_bulk_gen"] = st.session_state.get("inq_bulk_gen", 0) + 1
        now = clock.now()
        bulk_event = st.dataframe(
            _table(rows, now),
            hide_index=True,
            width="stretch",
            key=f"inq_bulk_table_{st.session_state['inq_bulk_gen']}",
            on_select="rerun",
            selection_mode="multi-row",
            column_config=TABLE_COLUMNS,
        )
        chosen = [ids[i] for i in bulk_event.selection.rows if i < len(ids)]
        st.caption(
            f"열린 문의 {total:,}건 중 {len(rows):,}건 · {clock.format_kst(now, with_seconds=True)} 기준 "
            "(여러 건 선택 중에는 표가 멈춰 있습니다)"
        )
        with st.container(border=True, key="inq_bulk_panel"):
            if not chosen:
                st.caption("표 왼쪽 칸을 눌러 문의를 고르세요.")
            else:
                listed = ", ".join(f"{i}번" for i in chosen[:10]) + (f" 외 {len(chosen) - 10}건" if len(chosen) > 10 else "")
                st.markdown(f"**{len(chosen)}건 선택** · {listed}")
                g1, g2, g3 = st.columns(3)
                bulk_to = g1.selectbox(
                    "배정할 담당자", list(staff_names), format_func=lambda v: staff_names[v], key="inq_bulk_to",
                    index=None, placeholder="담당자 선택",
                )
                if g1.button("일괄 배정", key="inq_bulk_assign", disabled=bulk_to is None):
                    feedback.run(
                        "inq",
                        lambda s: inquiries.bulk_assign(s, actor, chosen, bulk_to),
                        lambda n: f"{n}건을 {staff_names[bulk_to]}에게 배정했습니다",
                    )
                bulk_type = g2.selectbox(
                    "바꿀 유형", TYPE_OPTIONS, format_func=lambda t: INQUIRY_TYPE_LABELS[t], key="inq_bulk_type_to",
                    index=None, placeholder="유형 선택",
                )
                if g2.button("일괄 유형 변경", key="inq_bulk_type", disabled=bulk_type is None):
                    feedback.run(
                        "inq",
                        lambda s: inquiries.bulk_change_type(s, actor, chosen, bulk_type),
                        lambda n: f"{n}건의 유형을 {INQUIRY_TYPE_LABELS[bulk_type]}(으)로 바꿨습니다",
                    )
                sure = g3.checkbox(f"{len(chosen)}건 해결을 확인합니다", key="inq_bulk_resolve_ok")
                if g3.button("일괄 해결", key="inq_bulk_resolve", disabled=not sure, type="primary"):
                    feedback.run(
                        "inq",
                        lambda s: inquiries.bulk_resolve(s, actor, chosen),
                        lambda n: f"{n}건을 해결 처리했습니다",
                    )
    else:
        _live_queue()

    st.divider()
    picked = st.selectbox(
        "문의 선택",
        ids,
        index=0 if ids else None,
        key="inq_pick",
        format_func=lambda i: next(
            f"{r.id}번 · {INQUIRY_TYPE_LABELS.get(r.type, r.type)} · {r.customer_name} · {r.subject}"
            for r in rows
            if r.id == i
        ),
    )
    n1, n2 = st.columns(2)
    n1.button("이전 문의", key="inq_prev", shortcut="K", on_click=_step, args=(ids, -1), disabled=not ids,
              icon=":material/arrow_upward:", width="stretch")
    n2.button("다음 문의", key="inq_next", shortcut="J", on_click=_step, args=(ids, 1), disabled=not ids,
              icon=":material/arrow_downward:", width="stretch")
    manual = st.number_input(
        "번호로 열기 (해결된 문의 포함)", min_value=0, step=1, value=0, key="inq_open_id"
    )
    inquiry_id = int(manual) if manual else picked

    if inquiry_id:
        try:
            with session_scope(engine) as session:
                info = inquiry_queue.detail(session, inquiry_id)
                customer_panel = inquiry_panel.customer_panel(session, info.inquiry.customer_id)
        except ChannelDeskError as exc:
            st.error(str(exc))
            info = None
        if info is not None:
            inquiry = info.inquiry
            payments_by_id = {p.id: p for p in [*info.payments, *customer_panel.payments]}

            def _payment_text(payment_id: int) -> str:
                """A payment as the person knows it: who, how much, when (not its row id)."""
                p = payments_by_id[payment_id]
                return f"{gateway_label(p.gateway)} {format_krw(p.amount)} · {clock.format_kst(p.approved_at)}"

            st.subheader(f"{inquiry.id}번 문의 · {INQUIRY_TYPE_LABELS.get(inquiry.type, inquiry.type)}")
            if changed == inquiry.id:
                st.caption(":orange-badge[:material/edit: 방금 처리함]")
            st.text(inquiry.subject)
            nearest = info.sla.nearest
            # Two by two: a due time like "12월 4일(금) 14:30" fits whole, on a desktop and a phone.
            m1, m2 = st.columns(2)
            m3, m4 = st.columns(2)
            m1.metric("처리 상태", INQUIRY_STATUS_LABELS.get(inquiry.status, inquiry.status))
            m2.metric("기한 상태", sla.SLA_STATE_LABELS[nearest.state])
            m3.metric("첫 응답 기한", _short_due(info.sla.first_response.due_at))
            m4.metric("해결 기한", _short_due(info.sla.resolution.due_at))
            st.caption(
                f"고객 {ui.md_escape(info.customer.name)} · 담당 {info.staff_names.get(inquiry.assignee_id, '미배정')} · "
                f"접수 {clock.format_kst(inquiry.created_at)} · 휴일·영업시간 없이 24시간으로 세면 "
                f"{clock.format_kst(nearest.wall_clock_due_at)}까지"
            )

            left, right = st.columns([3, 2])
            with left:
                st.markdown("**대화 기록**")
                for event in info.events:
                    who = "user" if event.kind in ("created", "customer_message") else "assistant"
                    with st.chat_message(who):
                        author = (
                            info.staff_names.get(event.author_id, "워커")
                            if event.author_id
                            else ("고객" if who == "user" else "워커")
                        )
                        st.caption(
                            f"{EVENT_LABELS.get(event.kind, event.kind)} · {author} · "
                            f"{clock.format_kst(event.at, with_seconds=True)}"
                        )
                        if event.body:
                            st.text(event.body)  # customer text: plain text, never markdown or HTML
            with right:
                desk.customer_panel(engine, actor, inquiry, customer_panel)
            desk.look_alike_pairs(engine, actor, inquiry, customer_panel)

            st.markdown("**처리**")
            iid = inquiry.id
            is_open = inquiry.status != "resolved"
            b1, b2, b3, b4 = st.columns(4)
            if b1.button("담당하기", key="inq_claim", disabled=inquiry.assignee_id == actor.id):
                _run(lambda s: inquiries.claim(s, actor, iid), "담당자로 지정되었습니다", iid)
            if b2.button("고객 응답 대기", key="inq_wait", disabled=inquiry.status != "open"):
                _run(
                    lambda s: inquiries.wait_on_customer(s, actor, iid),
                    "고객 응답 대기로 바꿨습니다 (기한 일시정지)", iid,
                )
            if is_open and b3.button("해결", key="inq_resolve", type="primary"):
                _run(lambda s: inquiries.resolve(s, actor, iid), "해결 처리했습니다", iid)
            if not is_open and b3.button("다시 열기", key="inq_reopen"):
                _run(lambda s: inquiries.reopen(s, actor, iid), "다시 열었습니다", iid)
            new_type = b4.selectbox(
                "유형",
                TYPE_OPTIONS,
                index=TYPE_OPTIONS.index(inquiry.type) if inquiry.type in TYPE_OPTIONS else 0,
                format_func=lambda t: INQUIRY_TYPE_LABELS[t],
                # The current type in the key: a type changed elsewhere (bulk, a colleague) starts a fresh
                # picker instead of a stale choice that would change the type straight back.
                key=f"inq_type_edit_{iid}_{inquiry.type}",
            )
            if new_type != inquiry.type:
                _run(lambda s: inquiries.change_type(s, actor, iid, new_type), "유형을 바꿨습니다", iid)

            a1, a2 = st.columns(2)
            with a1:
                assignee = st.selectbox(
                    "배정",
                    list(staff_names),
                    format_func=lambda v: staff_names[v],
                    key="inq_assign_to",
                    index=None,
                    placeholder="담당자 선택",
                )
                if st.button("배정", key="inq_assign", disabled=assignee is None):
                    _run(lambda s: inquiries.assign(s, actor, iid, assignee), "배정했습니다", iid)
            with a2:
                approved = [p for p in info.payments if p.approved_at is not None]
                receipt_payment = st.selectbox(
                    "영수증 보낼 결제",
                    [p.id for p in approved],
                    key="inq_receipt_pay",
                    format_func=_payment_text,
                    index=0 if approved else None,
                )
                if st.button(
                    "전자 영수증 보내기", key="inq_receipt", disabled=receipt_payment is None or not is_open
                ):
                    _run(
                        lambda s: inquiries.send_receipt(s, actor, iid, receipt_payment),
                        "영수증 발송을 예약했습니다", iid,
                    )

            desk.macro_buttons(engine, actor, inquiry)
            # Not a form: what is typed reaches the server on leaving the box, so a macro inserted
            # afterwards is added to it instead of replacing it. Kept when sending fails (a #{...} left,
            # a closed inquiry); only a sent reply empties the box.
            with st.container(border=True, key="inq_reply_box"):
                reply_text = st.text_area("고객에게 답변", key="inq_reply_text", max_chars=inquiries.MAX_TEXT)
                if st.button("답변 보내기", key="inq_reply_send", disabled=not is_open, type="primary"):
                    _run(
                        lambda s: desk.sent(inquiries.reply(s, actor, iid, reply_text)),
                        "답변을 기록하고 발송 대기열에 넣었습니다", iid,
                    )
            c1, c2 = st.columns(2)
            with c1, st.form("inq_customer_form", clear_on_submit=True):
                customer_text = st.text_area(
                    "고객 메시지 기록 (카카오톡에서 옮겨 적기)",
                    key="inq_customer_text",
                    max_chars=inquiries.MAX_TEXT,
                )
                if st.form_submit_button("고객 메시지 추가"):
                    _run(
                        lambda s: inquiries.customer_message(s, actor, iid, customer_text),
                        "고객 메시지를 기록했습니다", iid,
                    )
            with c2, st.form("inq_note_form", clear_on_submit=True):
                note_text = st.text_area(
                    "내부 메모 (고객에게 보이지 않음)", key="inq_note_text", max_chars=inquiries.MAX_TEXT
                )
                if st.form_submit_button("메모 남기기"):
                    _run(lambda s: inquiries.add_note(s, actor, iid, note_text), "메모를 남겼습니다", iid)

            refundable = [
                p for p in info.payments if p.approved_at is not None and p.amount > p.refunded_amount
            ]
            with st.expander("환불 (전액·부분)", key="inq_refund_open"):
                if not refundable:
                    st.info("환불할 수 있는 결제가 없습니다.")
                else:
                    pay_id = st.selectbox(
                        "결제",
                        [p.id for p in refundable],
                        key="inq_refund_pay",
                        format_func=lambda i: next(
                            f"{_payment_text(p.id)} (환불 가능 "
                            f"{format_krw(p.amount - p.refunded_amount)})"
                            for p in refundable
                            if p.id == i
                        ),
                    )
                    payment = next(p for p in refundable if p.id == pay_id)
                    limit = payment.amount - payment.refunded_amount
                    amount = st.number_input(
                        "환불 금액 (원)",
                        min_value=1,
                        max_value=limit,
                        value=limit,
                        step=1000,
                        key="inq_refund_amount",
                    )
                    reason = st.text_input("환불 사유", key="inq_refund_reason", max_chars=500)
                    confirm = st.checkbox(
                        f"{format_krw(int(amount))} 환불을 확인합니다", key="inq_refund_confirm"
                    )
                    if st.button("환불하기", key="inq_refund", disabled=not confirm, type="primary"):
                        _run(
                            lambda s: inquiries.refund(
                                s, actor, iid, payment_id=pay_id, amount=int(amount), reason=reason
                            ),
                            f"{format_krw(int(amount))} 환불을 요청했습니다", iid,
                        )

# --------------------------------------------------------------------------- new inquiry
with tab_new:
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
        _run(
            lambda s: inquiries.create_inquiry(
                s, actor, customer_id=customer_id, body=body, inquiry_type=chosen
            ),
            "문의를 등록했습니다",
        )

# --------------------------------------------------------------------------- macros
with tab_macros:
    desk.macro_admin(engine, actor)

# --------------------------------------------------------------------------- report
with tab_report:
    today = clock.today_kst()
    r1, r2 = st.columns(2)
    first_day = r1.date_input("시작일", today - timedelta(days=27), key="inq_rep_from")
    last_day = r2.date_input("종료일", today, key="inq_rep_to")
    start, end = clock.kst_day_range(first_day, last_day)
    # The report reads every inquiry of the period: computed on request, not on every queue rerun.
    if not st.toggle("리포트 계산", key="inq_rep_on"):
        st.caption("기간을 고른 뒤 '리포트 계산'을 켜세요.")
        st.stop()
    with session_scope(engine) as session:
        data = sla_report.report(session, start, end)

    def _bucket_rows(buckets: dict, label: str, names: dict | None = None) -> list[dict]:  # type: ignore[type-arg]
        return [
            {
                label: (names or {}).get(key, key),
                "문의 수": b.total,
                "목표 내": b.within,
                "목표 내 비율": "-" if b.share_within is None else f"{b.share_within * 100:.1f}%",
                "첫 응답 중앙값": "-"
                if b.median_first_response is None
                else sla.format_duration(timedelta(seconds=b.median_first_response)),
                "해결 중앙값": "-"
                if b.median_resolution is None
                else sla.format_duration(timedelta(seconds=b.median_resolution)),
            }
            for key, b in sorted(buckets.items())
        ]

    overall = data.overall
    st.metric(
        "목표 내 처리 비율",
        "-" if overall.share_within is None else f"{overall.share_within * 100:.1f}%",
        help=f"{overall.within:,} / {overall.total:,}건",
    )
    st.markdown("**유형별**")
    st.dataframe(
        _bucket_rows(data.by_type, "유형", INQUIRY_TYPE_LABELS),
        hide_index=True,
        width="stretch",
        key="inq_rep_type",
    )
    st.markdown("**담당자별**")
    st.dataframe(_bucket_rows(data.by_staff, "담당자"), hide_index=True, width="stretch", key="inq_rep_staff")
    st.markdown("**주별**")
    st.dataframe(_bucket_rows(data.by_week, "주", {k: iso_week_text(k) for k in data.by_week}), hide_index=True, width="stretch", key="inq_rep_week")
    st.markdown(f"**미준수 {len(data.misses):,}건**")
    st.dataframe(
        [
            {
                "문의": m.inquiry_id,
                "유형": INQUIRY_TYPE_LABELS.get(m.type, m.type),
                "담당자": m.assignee,
                "목표": "첫 응답" if m.target == "first_response" else "해결",
                "기한": clock.format_kst(m.due_at),
                "처리": clock.format_kst(m.done_at) if m.done_at else "미처리",
                "지연": sla.format_duration(timedelta(seconds=m.late_seconds)),
            }
            for m in data.misses[:500]
        ],
        hide_index=True,
        width="stretch",
        key="inq_rep_misses",
    )
    st.download_button(
        "CSV 내려받기",
        ("\ufeff" + sla_report.report_csv(data)).encode("utf-8"),
        file_name=f"inquiry_sla_{first_day}_{last_day}.csv",
        mime="text/csv",
        key="inq_rep_csv",
    )
