"""주문: search orders, read one (items, payments, refunds, messages, timeline), refund with a
confirmation, payment links and their funnel, order import (CSV/XLSX with a column mapping)."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

import streamlit as st
from sqlmodel import select

import ui
from core import clock
from core.accounts.auth import phone_for
from core.customers import service as customer_service
from core.db import session_scope
from core.errors import ChannelDeskError, ValidationFailed
from core.models import Product
from core.models.orders import (
    ORDER_STATUS_LABELS,
    PAYMENT_LINK_STATUS_LABELS,
    PAYMENT_STATUS_LABELS,
    REFUND_STATUS_LABELS,
    OrderStatus,
    PaymentLinkStatus,
    RefundStatus,
)
from core.models.staff import ROLE_LABELS
from core.money import format_krw
from core.payments import import_mapping, import_source
from core.payments import jobs as payment_jobs
from core.payments import links as payment_links
from core.payments.import_rows import ImportRejected
from core.payments.order_import import run_import
from core.payments.queries import order_detail, search_orders
from core.payments.refunds import REFUND_ROLES, refund_payment, refundable_amount, unknown_outcome_notes
from core.rewards import queries as reward_queries
from ui import dates, feedback
from ui.labels import (
    PAYMENT_METHOD_LABELS,
    VIP_BADGE,
    gateway_label,
    import_rollup_note,
    method_label,
    with_vip,
)
from ui.tables import show_rows

actor = ui.current_actor()
engine = ui.engine()
st.title("주문")
feedback.show("ord")
changed = feedback.highlighted("ord")  # ("refund", id) / ("link", id) after an action

tab_search, tab_links, tab_import = st.tabs(["주문 조회", "결제 링크", "주문 가져오기"])

with tab_search:
    cols = st.columns([3, 1, 1, 1, 1])
    query = cols[0].text_input("주문번호 / 고객명 / 연락처", key="ord_query")
    status_choice = cols[1].selectbox(
        "상태",
        ["전체", *[s.value for s in OrderStatus]],
        key="ord_status",
        format_func=lambda v: "전체" if v == "전체" else ORDER_STATUS_LABELS[v],
    )
    method_choice = cols[2].selectbox(
        "결제수단", ["전체", *PAYMENT_METHOD_LABELS], key="ord_method",
        format_func=lambda v: "전체" if v == "전체" else method_label(v),
    )
    since, today = clock.today_kst() - timedelta(days=366 * 5), clock.today_kst()
    date_from = dates.day_select(
        "시작일", None, key="ord_from", first=since, last=today, empty="전체", container=cols[3]
    )
    date_to = dates.day_select(
        "종료일", None, key="ord_to", first=since, last=today, empty="전체", container=cols[4]
    )
    try:
        with session_scope(engine) as session:
            rows = search_orders(
                session,
                query=query,
                status=None if status_choice == "전체" else status_choice,
                payment_method=None if method_choice == "전체" else method_choice,
                date_from=date_from if isinstance(date_from, date) else None,
                date_to=date_to if isinstance(date_to, date) else None,
            )
    except ValidationFailed as exc:
        st.warning(str(exc))
        rows = []
    show_rows(
        [
            {
                "주문번호": r["order_number"],
                "고객": with_vip(r["customer_name"], r["vip"]),
                "연락처": phone_for(actor, r["phone"]),
                "금액": r["total_amount"],
                "환불": r["refunded_amount"],
                "상태": ORDER_STATUS_LABELS.get(r["status"], r["status"]),
                "주문일시": r["ordered_at"],
            }
            for r in rows
        ],
        empty="조건에 맞는 주문이 없습니다.",
        key="ord_results",
    )
    if rows:
        chosen = st.selectbox(
            "주문 상세",
            [r["id"] for r in rows],
            key="ord_pick",
            format_func=lambda oid: next(
                f"{r['order_number']} · {with_vip(r['customer_name'], r['vip'])}" for r in rows if r["id"] == oid
            ),
        )
        with session_scope(engine) as session:
            detail = order_detail(session, chosen)
        order, customer = detail["order"], detail["customer"]
        st.subheader(f"주문 {ui.md_escape(order.order_number)}")
        if detail["vip"]:
            st.markdown(f"{VIP_BADGE} 고객")
        st.caption(
            f"{ui.md_escape(customer.name) if customer else '-'} · {ORDER_STATUS_LABELS.get(order.status, order.status)} · "
            f"{format_krw(order.total_amount)} · 주문 {clock.format_kst(order.ordered_at)}"
        )
        show_rows(
            [{"상품": i.product_name, "수량": i.quantity, "금액": i.amount} for i in detail["items"]],
            key="ord_items",
        )
        st.markdown("**결제**")
        show_rows(
            [
                {
                    "결제": f"{i + 1}번째 결제",
                    "대행사": gateway_label(p.gateway),
                    "수단": method_label(p.method),
                    "금액": p.amount,
                    "환불": p.refunded_amount,
                    "상태": PAYMENT_STATUS_LABELS.get(p.status, p.status),
                    "승인": p.approved_at,
                }
                for i, p in enumerate(detail["payments"])
            ],
            empty="결제 기록이 없습니다.",
            key="ord_payments",
        )
        for note in unknown_outcome_notes(detail["payments"], detail["refunds"]):
            st.warning(note)
        unsettled = [
            p
            for p in detail["payments"]
            if p.gateway_tid
            and (
                p.status == "unknown"
                or any(r.payment_id == p.id and r.status in ("requested", "unknown") for r in detail["refunds"])
            )
        ]
        if actor.role in REFUND_ROLES:
            for payment in unsettled:
                if st.button(f"결제 #{payment.id} 결제 대행사에 지금 조회", key=f"ord_lookup_{payment.id}"):
                    try:
                        with session_scope(engine) as session:
                            payment_jobs.lookup_payment_now(session, actor, payment.id)
                        st.toast("결제 대행사 조회를 마쳤습니다.")
                        st.rerun()
                    except ChannelDeskError as exc:
                        st.error(str(exc))
        for payment in detail["payments"]:
            if payment.routing_log:
                with st.expander(f"{gateway_label(payment.gateway)} 결제 처리 기록"):
                    st.dataframe(payment.routing_log, hide_index=True, key=f"ord_routing_{payment.id}")
        st.markdown("**환불**")
        refunds = detail["refunds"]
        show_rows(
            [
                {
                    "금액": r.amount,
                    "사유": r.reason,
                    "상태": REFUND_STATUS_LABELS.get(r.status, "확인 중"),
                    "확인 사유": r.unknown_reason or "",
                    "요청": r.created_at,
                }
                for r in refunds
            ],
            empty="환불 기록이 없습니다.",
            key="ord_refunds",
            highlight=lambda i: changed == ("refund", refunds[i].id),
        )
        st.markdown("**타임라인**")
        with session_scope(engine) as session:  # coupons, points and referral rewards of this customer
            rewards = [e for e in reward_queries.customer_timeline(session, detail["order"].customer_id)
                       if e["at"] >= detail["order"].ordered_at]
        timeline = sorted(detail["timeline"] + rewards, key=lambda e: e["at"])
        show_rows([{"시각": e["at"], "내용": e["event"]} for e in timeline], key="ord_timeline")

        refundable = [
            p
            for p in detail["payments"]
            if p.gateway_tid and refundable_amount(p) > 0 and p.status in ("approved", "partially_refunded")
        ]
        if actor.role in REFUND_ROLES and refundable:
            st.markdown("**환불하기**")
            payment = st.selectbox(
                "환불할 결제",
                refundable,
                key="ord_refund_payment",
                format_func=lambda p: (
                    f"{gateway_label(p.gateway)} {method_label(p.method)} {format_krw(p.amount)} "
                    f"(환불 가능 {format_krw(refundable_amount(p))})"
                ),
            )
            amount = st.number_input(
                "환불 금액(원)",
                min_value=1,
                max_value=refundable_amount(payment),
                value=refundable_amount(payment),
                step=1000,
                key="ord_refund_amount",
            )
            reason = st.text_input("환불 사유", key="ord_refund_reason")
            if st.button("환불 내용 확인", key="ord_refund_review"):
                st.session_state["ord_refund_pending"] = {
                    "payment_id": payment.id,
                    "amount": int(amount),
                    "reason": reason,
                    "key": uuid.uuid4().hex,
                }
            pending = st.session_state.get("ord_refund_pending")
            if pending and pending["payment_id"] == payment.id:
                st.warning(
                    f"{format_krw(pending['amount'])}을(를) {gateway_label(payment.gateway)} "
                    f"{method_label(payment.method)} 결제 ({format_krw(payment.amount)}, "
                    f"{clock.format_kst(payment.approved_at)} 승인)로 환불합니다. 되돌릴 수 없습니다."
                )
                left, right = st.columns(2)
                if left.button("환불 실행", type="primary", key="ord_refund_confirm"):
                    st.session_state.pop("ord_refund_pending", None)
                    feedback.run(
                        "ord",
                        lambda session: refund_payment(
                            session,
                            actor,
                            payment_id=pending["payment_id"],
                            amount=pending["amount"],
                            reason=pending["reason"],
                            idempotency_key=pending["key"],
                        ),
                        lambda refund: (
                            f"{format_krw(refund.amount)} 환불 완료. 고객에게 안내 메시지를 보냈습니다."
                            if refund.status == RefundStatus.SUCCEEDED
                            else "대행사 응답을 확인 중입니다. 잠시 후 자동으로 확정됩니다."
                        ),
                        highlight=lambda refund: ("refund", refund.id),
                    )
                if right.button("취소", key="ord_refund_cancel"):
                    st.session_state.pop("ord_refund_pending", None)
                    st.rerun()

with tab_links:
    with session_scope(engine) as session:
        counts = payment_links.funnel(session, since=clock.now() - timedelta(days=30))
        links = payment_links.recent_links(session, limit=50)
        products = list(session.exec(select(Product).where(Product.is_active)).all())
    sent = sum(counts.values())
    st.caption("최근 30일 결제 링크")
    metric_cols = st.columns(5)
    metric_cols[0].metric("발송", sent)
    metric_cols[1].metric("열람", sent - counts["created"])
    metric_cols[2].metric("수단 선택", counts["method_selected"] + counts["paid"])
    metric_cols[3].metric("결제 완료", counts["paid"])
    metric_cols[4].metric("전환율", f"{(counts['paid'] / sent * 100) if sent else 0:.0f}%")
    with st.form("ord_link_form"):
        st.markdown("**새 결제 링크**")
        product_id = st.selectbox(
            "상품 (직접 입력은 비워두기)",
            [None, *[p.id for p in products]],
            key="ord_link_product",
            format_func=lambda pid: (
                "직접 입력(맞춤 견적)"
                if pid is None
                else next(f"{p.name} · {format_krw(p.price)}" for p in products if p.id == pid)
            ),
        )
        item_name = st.text_input("상품명 (맞춤 견적)", key="ord_link_item")
        link_amount = st.number_input("금액(원)", min_value=0, value=0, step=1000, key="ord_link_amount")
        tax_free = st.number_input("면세 금액(원)", min_value=0, value=0, step=1000, key="ord_link_tax_free")
        memo = st.text_input("안내 메모", key="ord_link_memo")
        phone = st.text_input("고객 연락처 (선택)", key="ord_link_phone")
        create = st.form_submit_button("링크 만들기", type="primary")
    if create:

        def _create_link(session):  # type: ignore[no-untyped-def]
            customer_id = None
            if phone.strip():
                customer = customer_service.find_by_phone(session, phone)  # any shape of the number
                if customer is None:
                    raise ChannelDeskError(f"연락처 {phone}의 고객을 찾을 수 없습니다")
                customer_id = customer.id
            link = payment_links.create_payment_link(
                session,
                actor,
                product_id=product_id,
                item_name=item_name or None,
                amount=int(link_amount) if link_amount else None,
                tax_free_amount=int(tax_free),
                memo=memo,
                customer_id=customer_id,
            )
            st.session_state["ord_link_text"] = payment_links.chat_text(link)
            return link

        feedback.run(
            "ord",
            _create_link,
            "결제 링크를 만들었습니다. 아래 문구를 복사해 채팅에 붙여넣으세요.",
            highlight=lambda link: ("link", link.id),
        )
    if isinstance(changed, tuple) and changed[0] == "link" and st.session_state.get("ord_link_text"):
        st.markdown("**방금 만든 결제 링크 (채팅에 붙여넣기)**")
        st.code(st.session_state["ord_link_text"], language=None)
    show_rows(
        [
            {
                "상품": link.item_name,
                "금액": link.amount,
                "상태": PAYMENT_LINK_STATUS_LABELS.get(PaymentLinkStatus(link.status), link.status),
                "만든 시각": link.created_at,
                "만료": link.expires_at,
                "링크": payment_links.link_url(link),
            }
            for link in links
        ],
        empty="아직 만든 결제 링크가 없습니다.",
        key="ord_links",
        highlight=lambda i: changed == ("link", links[i].id),
    )

def ui_columns(header: list[str]) -> list[str]:
    """Unique, non-empty column titles for the preview table ('' → '열 3', a repeat → '상품명 (2)')."""
    seen: dict[str, int] = {}
    titles = []
    for i, name in enumerate(header, start=1):
        title = name or f"열 {i}"
        seen[title] = seen.get(title, 0) + 1
        titles.append(title if seen[title] == 1 else f"{title} ({seen[title]})")
    return titles


with tab_import:
    st.caption(
        "스마트스토어·카페24 등에서 내려받은 주문 파일(CSV 또는 엑셀 XLSX, UTF-8 또는 CP949). 한 줄이 주문의 상품 "
        "한 줄이고, 같은 주문번호의 줄은 한 주문이 됩니다. 모든 줄이 올바를 때만 저장되며, 이미 있는 주문번호는 "
        "건너뜁니다."
    )
    upload = st.file_uploader("주문 파일 (최대 50MB)", type=["csv", "xlsx"], key="ord_import_file",
                              max_upload_size=50)
    if upload is not None and st.session_state.get("ord_import_name") != (upload.name, upload.size):
        st.session_state["ord_import_data"] = upload.getvalue()
        st.session_state["ord_import_name"] = (upload.name, upload.size)
        st.session_state.pop("ord_import_errors", None)
    data = st.session_state.get("ord_import_data")
    if data:
        source_name = str((st.session_state.get("ord_import_name") or ("upload.csv",))[0])
        try:
            header, first_rows = import_source.preview(data)
        except import_source.SourceError as exc:
            st.error(str(exc))
            header, first_rows = [], []
        if header:
            st.markdown("**미리보기** (처음 5줄)")
            shown = ui_columns(header)
            st.dataframe([dict(zip(shown, row, strict=False)) for row in first_rows], hide_index=True,
                         key="ord_import_preview")
            with session_scope(engine) as session:
                saved = import_mapping.saved(session)
            choice = st.selectbox("열 매핑", ["자동 추천 (머리글 이름)", *sorted(saved)], key="ord_import_saved")
            base = saved.get(choice) or import_mapping.suggest(header)
            token = abs(hash((tuple(header), choice))) % 10**8  # a new file or mapping starts fresh choices
            none = "(없음)"
            mapping: dict[str, str] = {}
            columns = st.columns(3)
            for i, import_field in enumerate(import_mapping.FIELDS):
                options = [none, *dict.fromkeys(header)]
                current = base.get(import_field.key)
                picked = columns[i % 3].selectbox(
                    f"{import_field.label}{' (필수)' if import_field.required else ''}",
                    options,
                    index=options.index(current) if current in options else 0,
                    help=import_field.help or None,
                    key=f"ord_map_{import_field.key}_{token}",
                )
                if picked != none:
                    mapping[import_field.key] = picked
            problems = import_mapping.check(mapping, header)
            for problem in problems:
                st.warning(problem)
            name_column, save_column = st.columns([3, 1])
            mapping_name = name_column.text_input("매핑 이름 (다음에 다시 쓰기)", key="ord_import_mapping_name",
                                                  placeholder="예: 스마트스토어")
            if save_column.button("매핑 저장", key="ord_import_mapping_save", disabled=bool(problems)):
                try:
                    with session_scope(engine) as session:
                        import_mapping.save(session, actor, mapping_name, mapping)
                except ChannelDeskError as exc:
                    feedback.failed("ord", str(exc))
                else:
                    feedback.done("ord", f"열 매핑 '{mapping_name.strip()}'을(를) 저장했습니다")
            if st.button("가져오기", type="primary", key="ord_import_run", disabled=bool(problems)):
                try:
                    with st.spinner("주문을 저장하고 매출을 집계하는 중입니다…"):
                        result = run_import(engine, actor, data, source_name=source_name, mapping=mapping)
                except ImportRejected as exc:
                    st.session_state["ord_import_errors"] = [{"행": e.row, "오류": e.message} for e in exc.errors]
                    feedback.failed("ord", f"{len(exc.errors)}건의 오류가 있어 아무것도 저장하지 않았습니다.")
                except ChannelDeskError as exc:
                    feedback.failed("ord", str(exc))
                else:
                    st.session_state.pop("ord_import_errors", None)
                    created = result.products_created
                    products = (
                        f" · 새 상품 {len(created):,}개: {', '.join(created[:10])}{' …' if len(created) > 10 else ''}"
                        if created else ""
                    )
                    feedback.done(
                        "ord",
                        f"주문 {result.created:,}건(상품 {result.lines:,}줄) 가져옴 · 이미 있는 주문 "
                        f"{result.skipped_existing:,}건 건너뜀 · 새 고객 {result.customers_created:,}명 · "
                        f"환불 {result.refunds_created:,}건{products}{import_rollup_note(result.rollup, result.rollup_failed)}",
                    )
    if errors := st.session_state.get("ord_import_errors"):
        st.dataframe(errors, hide_index=True, key="ord_import_error_rows")

if actor.role not in REFUND_ROLES:
    st.caption(f"환불은 {', '.join(ROLE_LABELS[r] for r in REFUND_ROLES)}만 할 수 있습니다.")
