"""The 문의 queue (pages/inquiries.py): filters, the live table (desktop) and cards (phone) redrawn each
second, the new-inquiry and breach signals, bulk actions, and the picker that opens one inquiry.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pyarrow as pa
import streamlit as st
from sqlalchemy import Engine

import ui
from core import clock
from core.accounts.actor import Actor
from core.db import session_scope
from core.inquiries import queue as inquiry_queue
from core.inquiries import service as inquiries
from core.inquiries import sla
from core.models.inquiries import INQUIRY_TYPE_LABELS
from ui import device, feedback
from ui.inquiry_desk import PAGE, TYPE_OPTIONS
from ui.labels import VIP_BADGE, with_vip

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
CARD_PAGE = 30  # cards per page on a phone, most urgent first; 더 보기 adds as many again
SHOWN_OPTIONS = [50, 100, 200, 500]  # 표시: how many rows the queue loads


def state_badge(state: str) -> str:
    """`:red-badge[:material/error: 초과]`: a colored badge markdown renders without emoji."""
    color, icon = STATE_STYLE[state]
    return f":{color}-badge[:material/{icon}: {STATE_BADGES[state]}]"


def _request_open(inquiry_id: int) -> None:
    """A tapped card / selected row / j·k: the next full run opens that inquiry (see _take_open_request)."""
    st.session_state["inq_open_req"] = inquiry_id


def _more_cards(loaded: int) -> None:
    """더 보기: CARD_PAGE more cards in the same order under the same filters. Cards past what the
    queue loaded raise 표시 to the next size, which the fragment loads with a full run."""
    wanted = st.session_state.get("inq_cards_shown", CARD_PAGE) + CARD_PAGE
    st.session_state["inq_cards_shown"] = wanted
    limit = st.session_state.get("inq_f_limit", SHOWN_OPTIONS[1])
    if wanted > loaded and limit < SHOWN_OPTIONS[-1]:
        st.session_state["inq_f_limit"] = next(
            n for n in SHOWN_OPTIONS if n >= min(wanted, SHOWN_OPTIONS[-1])
        )
        st.session_state["inq_reload"] = True


def _cards_for(query: dict[str, Any]) -> None:
    """Other filters start the cards again from the first page (더 보기 counts within one filter)."""
    filters = repr({k: v for k, v in query.items() if k != "limit"})
    if st.session_state.get("inq_cards_filters") != filters:
        st.session_state["inq_cards_filters"] = filters
        st.session_state["inq_cards_shown"] = CARD_PAGE


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


def _table(rows: list[inquiry_queue.QueueRow], now: datetime) -> pa.Table | list[dict[str, object]]:
    """The queue's rows as an Arrow table: st.dataframe sends it as it is (from a list of dicts it goes
    through pandas first: 1.0 vs 0.1 ms for 100 rows, every second of every open desk)."""
    shown = [
        {
            "번호": row.id,
            "상태": STATE_BADGES[row.state(now).value],
            "남은 시간": _countdown(row, now),
            "목표": "첫 응답" if row.target == "first_response" else "해결",
            "유형": INQUIRY_TYPE_LABELS.get(row.type, row.type),
            "고객": with_vip(row.customer_name, row.vip),
            "제목": row.subject,
            "담당": row.assignee_name or "미배정",
            "기한": clock.format_kst(row.due_at, with_seconds=True),
        }
        for row in rows
    ]
    return pa.Table.from_pylist(shown) if shown else shown


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


def staff_names(engine: Engine) -> dict[int, str]:
    """Everyone an inquiry can be assigned to, by id (the filter, bulk assign and the detail's 배정)."""
    with session_scope(engine) as session:
        staff = inquiry_queue.assignable_staff(session)
    return {u.id: u.display_name for u in staff}


def _filters(actor: Actor, staff_names: dict[int, str]) -> tuple[dict[str, Any], bool, bool]:
    """The toggles and the filter panel: the queue query, whether bulk mode is on, whether to beep."""
    with st.container(horizontal=True, key="inq_toggles"):  # one line on a phone too
        mine = st.toggle("내 문의", key="inq_f_mine", help="나에게 배정된 문의만 봅니다")
        bulk_mode = st.toggle(
            "여러 건 선택", key="inq_bulk", help="표에서 여러 문의를 골라 한 번에 배정·유형 변경·해결"
        )
        sound = st.toggle(
            "알림음",
            key="inq_sound",
            help="새 문의나 기한 초과 때 짧은 소리 (브라우저가 막으면 화면을 한 번 누른 뒤부터)",
        )
    active = sum(bool(st.session_state.get(k)) for k in ("inq_f_type", "inq_f_state")) + (
        st.session_state.get("inq_f_assignee", "all") != "all"
    )
    filters = st.expander(f"필터 · {active}개 적용" if active else "필터", icon=":material/filter_list:")
    f1, f2, f3, f5 = filters.columns([3, 3, 2, 1])
    chosen_types = f1.multiselect(
        "유형",
        TYPE_OPTIONS,
        format_func=lambda t: INQUIRY_TYPE_LABELS[t],
        key="inq_f_type",
        placeholder="전체",
    )
    chosen_states = f2.multiselect(
        "상태",
        list(STATE_BADGES),
        format_func=lambda s: STATE_BADGES[s],
        key="inq_f_state",
        placeholder="전체",
    )
    assignee_choice = f3.selectbox(
        "담당자",
        ["all", "none", *staff_names],
        format_func=lambda v: {"all": "전체", "none": "미배정"}.get(v, staff_names.get(v, v)),
        key="inq_f_assignee",
        disabled=mine,
    )
    shown = f5.selectbox("표시", SHOWN_OPTIONS, index=1, key="inq_f_limit")
    assignee_id = actor.id if mine else (assignee_choice if isinstance(assignee_choice, int) else None)
    query = {
        "types": chosen_types,
        "states": chosen_states,
        "assignee_id": assignee_id,
        "unassigned": (assignee_choice == "none" and not mine),
        "limit": shown,
    }
    return query, bulk_mode, sound


def _signals(
    engine: Engine, query: dict[str, Any], sound: bool, live_rows: list[inquiry_queue.QueueRow], now: datetime
) -> None:
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
        names = ", ".join(f"{i}번" for i in crossed[:3]) + (
            f" 외 {len(crossed) - 3}건" if len(crossed) > 3 else ""
        )
        fresh.append(f"기한 초과: {names} 문의")
        st.session_state["inq_unseen"] += len(crossed)
    for text in fresh:
        st.toast(text, icon=":material/notifications_active:", duration="long")
    unseen = st.session_state["inq_unseen"]
    st.set_page_config(page_title=f"({unseen}) 문의 · ChannelDesk" if unseen else "문의 · ChannelDesk")
    if fresh and sound:
        with st.container(key="inq_beep"):
            st.audio(_beep(), format="audio/wav", autoplay=True)


def _live_table(live_rows: list[inquiry_queue.QueueRow], now: datetime, previous_ids: list[int]) -> None:
    """The computer's layout: one table, a row selected opens it."""
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


def _live_cards(live_rows: list[inquiry_queue.QueueRow], live_total: int, now: datetime) -> None:
    """The phone's layout: cards, most urgent first, CARD_PAGE at a time."""
    with st.container(key="inq_narrow"):
        shown = min(st.session_state.get("inq_cards_shown", CARD_PAGE), len(live_rows))
        for row in live_rows[:shown]:
            state_value = row.state(now).value
            with st.container(border=True, key=f"inq_card_box_{row.id}"):
                st.markdown(
                    f"**{row.id}번** {state_badge(state_value)} {VIP_BADGE if row.vip else ''} "
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
        left = live_total - shown
        limit = st.session_state.get("inq_f_limit", SHOWN_OPTIONS[1])
        if left > 0 and (shown < len(live_rows) or limit < SHOWN_OPTIONS[-1]):
            st.button(
                f"더 보기 ({min(CARD_PAGE, left):,}건 더 · 남은 {left:,}건)",
                key="inq_cards_more",
                on_click=_more_cards,
                args=(len(live_rows),),
                icon=":material/expand_more:",
                width="stretch",
            )
        elif left > 0:
            st.caption(f"위 {shown:,}건 외 {left:,}건은 필터로 좁혀 보세요.")


@st.fragment(run_every=1)
def _live_queue(engine: Engine, query: dict[str, Any], sound: bool) -> None:
    """Each second: countdowns from the cached deadlines, and two max() lookups for new inquiries and
    changes (the table re-reads only when something changed). A tap or a selected row opens."""
    ui.live_guard()
    # A card tapped in this fragment opens it, 더 보기 past what is loaded loads more: both a full run.
    if "inq_open_req" in st.session_state or st.session_state.pop("inq_reload", False):
        st.rerun(scope="app")
    now = clock.now()
    _signals(engine, query, sound, st.session_state["inq_live_rows"][1], now)
    _, live_rows, live_total = st.session_state["inq_live_rows"]
    previous_ids = st.session_state.get("inq_shown_ids", [])
    if live_rows:
        layout = device.current_layout()  # one layout a tick where the browser tells which (ui/device.py)
        if layout != "phone":
            _live_table(live_rows, now, previous_ids)
        if layout != "computer":
            _live_cards(live_rows, live_total, now)
    else:
        st.info("조건에 맞는 열린 문의가 없습니다.")
    st.session_state["inq_shown_ids"] = [row.id for row in live_rows]
    st.caption(
        f"열린 문의 {live_total:,}건 중 {len(live_rows):,}건 표시 · {clock.format_kst(now, with_seconds=True)} 기준"
    )


def _bulk(
    actor: Actor, rows: list[inquiry_queue.QueueRow], ids: list[int], total: int, staff_names: dict[int, str]
) -> None:
    """Bulk mode: a still table with checkboxes, and assign / change type / resolve for the chosen."""
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
            listed = ", ".join(f"{i}번" for i in chosen[:10]) + (
                f" 외 {len(chosen) - 10}건" if len(chosen) > 10 else ""
            )
            st.markdown(f"**{len(chosen)}건 선택** · {listed}")
            g1, g2, g3 = st.columns(3)
            bulk_to = g1.selectbox(
                "배정할 담당자",
                list(staff_names),
                format_func=lambda v: staff_names[v],
                key="inq_bulk_to",
                index=None,
                placeholder="담당자 선택",
            )
            if g1.button("일괄 배정", key="inq_bulk_assign", disabled=bulk_to is None):
                feedback.run(
                    PAGE,
                    lambda s: inquiries.bulk_assign(s, actor, chosen, bulk_to),
                    lambda n: f"{n}건을 {staff_names[bulk_to]}에게 배정했습니다",
                )
            bulk_type = g2.selectbox(
                "바꿀 유형",
                TYPE_OPTIONS,
                format_func=lambda t: INQUIRY_TYPE_LABELS[t],
                key="inq_bulk_type_to",
                index=None,
                placeholder="유형 선택",
            )
            if g2.button("일괄 유형 변경", key="inq_bulk_type", disabled=bulk_type is None):
                feedback.run(
                    PAGE,
                    lambda s: inquiries.bulk_change_type(s, actor, chosen, bulk_type),
                    lambda n: f"{n}건의 유형을 {INQUIRY_TYPE_LABELS[bulk_type]}(으)로 바꿨습니다",
                )
            sure = g3.checkbox(f"{len(chosen)}건 해결을 확인합니다", key="inq_bulk_resolve_ok")
            if g3.button("일괄 해결", key="inq_bulk_resolve", disabled=not sure, type="primary"):
                feedback.run(
                    PAGE,
                    lambda s: inquiries.bulk_resolve(s, actor, chosen),
                    lambda n: f"{n}건을 해결 처리했습니다",
                )


def _picker(rows: list[inquiry_queue.QueueRow], ids: list[int]) -> int | None:
    """The inquiry to open: picked from the queue, stepped to with J / K, or typed by number."""
    picked = st.selectbox(
        "문의 선택",
        ids,
        index=0 if ids else None,
        key="inq_pick",
        format_func=lambda i: next(
            f"{r.id}번 · {INQUIRY_TYPE_LABELS.get(r.type, r.type)} · {with_vip(r.customer_name, r.vip)} · {r.subject}"
            for r in rows
            if r.id == i
        ),
    )
    n1, n2 = st.columns(2)
    n1.button(
        "이전 문의",
        key="inq_prev",
        shortcut="K",
        on_click=_step,
        args=(ids, -1),
        disabled=not ids,
        icon=":material/arrow_upward:",
        width="stretch",
    )
    n2.button(
        "다음 문의",
        key="inq_next",
        shortcut="J",
        on_click=_step,
        args=(ids, 1),
        disabled=not ids,
        icon=":material/arrow_downward:",
        width="stretch",
    )
    manual = st.number_input(
        "번호로 열기 (해결된 문의 포함)", min_value=0, step=1, value=0, key="inq_open_id"
    )
    return int(manual) if manual else picked


def render(engine: Engine, actor: Actor, staff_names: dict[int, str]) -> int | None:
    """The queue tab down to the picker; returns the inquiry to open below it (None: none)."""
    query, bulk_mode, sound = _filters(actor, staff_names)
    with session_scope(engine) as session:
        version = inquiry_queue.signals(session)
        rows, total = inquiry_queue.queue(session, clock.now(), **query)
    ids = [row.id for row in rows]
    _take_open_request(ids)
    _cards_for(query)
    st.session_state["inq_live_rows"] = (version.last_event_id, rows, total)
    st.session_state.setdefault("inq_seen_inquiry", version.last_inquiry_id)
    if bulk_mode:
        _bulk(actor, rows, ids, total, staff_names)
    else:
        _live_queue(engine, query, sound)
    st.divider()
    return _picker(rows, ids)
