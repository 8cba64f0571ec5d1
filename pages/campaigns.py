"""캠페인: segment builder with live count, compose with preview, smart test, winner to the rest, results.

Thin: every number and every write comes from core.campaigns; this script only lays it out.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import streamlit as st

import ui
from core import campaigns, clock
from core.accounts.auth import phone_for
from core.customers import vip
from core.db import session_scope
from core.errors import ChannelDeskError
from core.models import CampaignStatus, Role
from core.money import format_krw
from ui import campaign_guards, dates, feedback
from ui.labels import SUBSCRIPTION_RULE_STATUS, campaign_state, rule_sentence
from ui.tables import show_rows

actor = ui.current_actor()
engine = ui.engine()
state = st.session_state
state.setdefault("cmp_rules", {"include": [], "exclude": []})

st.title("캠페인")
feedback.show("cmp")
changed = feedback.highlighted("cmp")  # the campaign id the last action created or moved


def _select(campaign_id: int) -> None:
    """Remember the campaign a person created or opened: 발송 and 결과 both open it next."""
    state["cmp_selected"] = campaign_id


def _follow(widget_key: str, options: list[int]) -> None:
    """Point a campaign picker at the selected campaign before it is drawn (a keyed selectbox
    otherwise keeps its own old value and shows a campaign from before)."""
    if state.get("cmp_selected") in options:
        state[widget_key] = state["cmp_selected"]


tab_segment, tab_compose, tab_send, tab_results = st.tabs(["세그먼트", "메시지 작성", "발송", "결과"])


def _rule_text(rule: dict) -> str:
    return rule_sentence(rule, {p.id: p.name for p in products})


# ---------------------------------------------------------------- 세그먼트
with tab_segment:
    with session_scope(engine) as session:
        products = campaigns.products(session)
        saved = campaigns.saved_segments(session)
    if saved:
        names = {f"{s.name} (#{s.id})": s for s in saved}
        pick = st.selectbox("저장된 세그먼트 불러오기", ["-"] + list(names), key="cmp_seg_load")
        if pick != "-" and st.button("불러오기", key="cmp_seg_load_btn"):
            state["cmp_rules"] = dict(names[pick].rules)
            st.rerun()

    kind = st.selectbox(
        "조건", list(campaigns.RULE_LABELS), format_func=campaigns.RULE_LABELS.get, key="cmp_rule_type"
    )
    rule: dict = {"type": kind}
    if kind == "spent":
        rule["min_amount"] = st.number_input(
            "구매액 (원) 이상", 0, step=10000, value=300000, key="cmp_r_amount"
        )
        rule["days"] = st.number_input("최근 N일", 1, value=90, key="cmp_r_days")
    elif kind == "bought":
        chosen = st.multiselect(
            "상품", products, format_func=lambda p: p.name, key="cmp_r_products", placeholder="상품 선택"
        )
        rule["product_ids"] = [p.id for p in chosen]
        rule["category"] = st.text_input("또는 카테고리", key="cmp_r_category")
        rule["days"] = st.number_input("최근 N일", 1, value=30, key="cmp_r_bdays")
    elif kind == "repurchase_due":
        rule["within_days"] = st.number_input("N일 안에 재구매 시기", 0, value=7, key="cmp_r_within")
    elif kind == "dormant":
        rule["days"] = st.number_input("N일간 주문 없음", 1, value=90, key="cmp_r_dormant")
        rule["include_never"] = st.checkbox("주문이 한 번도 없는 고객 포함", key="cmp_r_never")
    elif kind == "subscription":
        rule["statuses"] = st.multiselect(
            "정기결제 상태",
            list(SUBSCRIPTION_RULE_STATUS),
            default=["active"],
            format_func=SUBSCRIPTION_RULE_STATUS.get,
            key="cmp_r_statuses",
        )
    elif kind == "channel_friend":
        rule["value"] = st.radio(
            "채널 친구",
            [True, False],
            format_func=lambda v: "친구" if v else "친구 아님",
            horizontal=True,
            key="cmp_r_friend",
        )
    elif kind == "order_count":
        rule["min"] = st.number_input("최소 주문 수", 0, value=2, key="cmp_r_min")
        rule["max"] = st.number_input("최대 주문 수 (0 = 제한 없음)", 0, value=0, key="cmp_r_max") or None
    elif kind == "first_purchase":
        rule["days"] = st.number_input("최근 N일 안에 첫 구매", 1, value=30, key="cmp_r_first")
    elif kind == "vip":
        with session_scope(engine) as session:
            members = vip.count(session)
        st.caption(f"설정 → VIP 고객의 기준을 따릅니다 · 지금 {members:,}명 (문의·주문의 VIP 표시와 같은 고객)")
    rule = {k: v for k, v in rule.items() if v not in (None, "", [])}
    left, right = st.columns(2)
    if left.button("포함 조건에 추가", key="cmp_add_include"):
        state["cmp_rules"]["include"].append(rule)
    if right.button("제외 조건에 추가", key="cmp_add_exclude"):
        state["cmp_rules"]["exclude"].append(rule)

    for side, title in (("include", "포함 (모두 만족)"), ("exclude", "제외 (하나라도 해당)")):
        st.subheader(title)
        for index, item in enumerate(list(state["cmp_rules"][side])):
            cols = st.columns([6, 1])
            cols[0].text(_rule_text(item))
            if cols[1].button("삭제", key=f"cmp_del_{side}_{index}"):
                state["cmp_rules"][side].pop(index)
                st.rerun()

    rules = state["cmp_rules"]
    if rules["include"]:
        try:
            with session_scope(engine) as session:
                counted = campaigns.count_segment(session, rules)
        except ChannelDeskError as exc:
            st.error(str(exc))
        else:
            a, b, c = st.columns(3)
            a.metric("조건에 맞는 고객", f"{counted.total:,}명")
            b.metric("광고 발송 가능", f"{counted.reachable:,}명")
            c.metric("제외", f"{counted.total - counted.reachable:,}명")
            if counted.message:
                st.warning(counted.message)
            if counted.excluded_labels:
                st.caption(" · ".join(f"{k} {v:,}명" for k, v in counted.excluded_labels.items()))
            st.caption(
                "광고 동의가 없어도 6개월 안에 같은 분류를 산 고객은 '메시지 작성'에서 광고 상품 분류를 고르면"
                " 발송 가능으로 셉니다 (정보통신망법 제50조)."
            )
            show_rows(
                [{"고객": m["name"], "전화": phone_for(actor, m["phone"])} for m in counted.sample],
                key="cmp_sample",
            )
        name = st.text_input("세그먼트 이름", key="cmp_seg_name")
        if st.button("세그먼트 저장", key="cmp_seg_save"):
            feedback.run(
                "cmp",
                lambda session: campaigns.save_segment(session, actor, name=name, rules=rules),
                lambda segment: f"세그먼트를 저장했습니다: {segment.name}",
            )
    else:
        st.info("포함 조건을 하나 이상 추가하세요.")

# ---------------------------------------------------------------- 메시지 작성
with tab_compose:
    st.caption("변수: " + ", ".join(f"#{{{k}}} ({v})" for k, v in campaigns.VARIABLES.items()))
    st.caption("'(광고) 상호', 연락처, 무료수신거부 문구는 자동으로 붙습니다.")
    name = st.text_input("캠페인 이름", key="cmp_name")
    count = st.number_input(
        "메시지 안 개수 (2개 이상이면 스마트 테스트)", 1, campaigns.MAX_VARIANTS, 1, key="cmp_n"
    )
    bodies = [st.text_area(f"{'ABCDE'[i]}안", key=f"cmp_body_{i}", max_chars=900) for i in range(int(count))]
    link = st.text_input("링크 주소 (#{링크} 자리에 클릭 기록 링크가 들어갑니다)", key="cmp_link")
    test_share, seed, window, rule_name, auto = 0.0, 0, 24, "click_rate", False
    if count > 1:
        test_share = st.slider("테스트 표본 비율 (%)", 1, 50, 10, key="cmp_test_share") / 100
        window = st.number_input("테스트 시간 (시간)", 1, 168, 24, key="cmp_window")
        rule_name = st.selectbox(
            "승자 규칙",
            list(campaigns.WINNER_RULES),
            format_func=campaigns.WINNER_RULES.get,
            key="cmp_winner_rule",
        )
        auto = st.checkbox("테스트 시간이 지나면 규칙대로 나머지에게 자동 발송", key="cmp_auto")
        seed = st.number_input("표본 시드 (같은 시드 = 같은 표본)", 0, 10**6, 0, key="cmp_seed")
    with session_scope(engine) as session:
        categories = campaigns.product_categories(session)
    advertised = st.selectbox(
        "광고하는 상품 분류 (6개월 안에 같은 분류를 산 고객은 광고 동의 없이도 받을 수 있습니다)",
        ["-"] + categories,
        key="cmp_category",
        help="정보통신망법 제50조: 거래한 것과 같은 종류의 상품 광고는 거래 후 6개월까지 사전 동의 없이 보낼 수 있습니다."
        " 수신거부한 고객과 야간 제한은 그대로 적용됩니다.",
    )
    holdout = st.slider("대조군 비율 (%) — 보내지 않고 효과 측정", 0, 50, 0, key="cmp_holdout") / 100
    attribution = st.number_input("매출 귀속 기간 (마지막 클릭 후 일)", 1, 60, 7, key="cmp_attr")
    if st.button("캠페인 만들기", key="cmp_create", type="primary"):

        def _create(session):  # type: ignore[no-untyped-def]
            campaign = campaigns.create_campaign(
                session,
                actor,
                name=name,
                bodies=bodies,
                rules=state["cmp_rules"],
                test_share=test_share,
                holdout_share=holdout,
                options={
                    "seed": int(seed),
                    "test_window_hours": int(window),
                    "winner_rule": rule_name,
                    "auto_winner": auto,
                    "attribution_days": int(attribution),
                    "link_url": link or None,
                    "advertised_category": None if advertised == "-" else advertised,
                },
            )
            _select(campaign.id)
            return campaign

        feedback.run(
            "cmp",
            _create,
            lambda campaign: f"캠페인 '{campaign.name}'을(를) 만들었습니다. '발송' 탭에 열어 두었습니다.",
            highlight=lambda campaign: campaign.id,
        )

# ---------------------------------------------------------------- 발송


with tab_send:
    with st.expander("건당 발송 비용 (발송 전 예상 비용에 쓰입니다)"):
        with session_scope(engine) as session:
            current_price = campaigns.price_per_message(session)
        st.write(f"현재 건당 {format_krw(current_price)}")
        if actor.role == Role.OWNER:
            new_price = st.number_input(
                "건당 비용 (원)",
                min_value=0,
                max_value=campaigns.MAX_PRICE_PER_MESSAGE,
                value=current_price,
                step=1,
                key="cmp_price",
            )
            if st.button("비용 저장", key="cmp_price_save"):
                feedback.run(
                    "cmp",
                    lambda session: campaigns.set_price_per_message(session, actor, new_price),
                    lambda saved: f"건당 비용을 {format_krw(saved)}으로 바꿨습니다.",
                )
        else:
            st.caption("건당 비용은 사장님만 바꿀 수 있습니다.")
    with session_scope(engine) as session:
        open_campaigns = campaigns.open_campaigns(session)
    if not open_campaigns:
        st.info("보낼 캠페인이 없습니다. '메시지 작성'에서 만드세요.")
    else:
        ids = [c.id for c in open_campaigns]
        by_id = {c.id: c for c in open_campaigns}
        _follow("cmp_send_pick", ids)
        chosen_id = st.selectbox(
            "캠페인",
            ids,
            key="cmp_send_pick",
            on_change=lambda: _select(state["cmp_send_pick"]),
            format_func=lambda i: (
                f"{by_id[i].name} · {campaign_state(by_id[i].status, by_id[i].winner_variant)}"
            ),
        )
        campaign = by_id[chosen_id]
        if campaign.status in (CampaignStatus.DRAFT, CampaignStatus.SCHEDULED):
            try:
                with session_scope(engine) as session:
                    lines = campaigns.preview(session, campaign.id)
                    plan = campaigns.plan(session, campaign.id)
            except ChannelDeskError as exc:
                st.error(str(exc))
                lines, plan = [], None
            st.subheader("미리보기 (실제 고객)")
            for line in lines:
                with st.container(border=True):
                    st.caption(f"{line.variant}안 · {ui.md_escape(line.name)}")
                    if line.text is None:
                        st.warning(f"발송 제외: {line.skipped_reason}")
                    else:
                        st.text(line.text)
                    if line.send_after > clock.now():
                        st.caption(f"야간 광고 금지: {clock.format_kst(line.send_after)}까지 보류")
            if plan is not None:
                st.subheader("발송 확인")
                if plan.message:
                    st.warning(plan.message)
                if plan.test:
                    st.write(
                        f"테스트 표본 {plan.test:,}명에게 지금 보내고, 나머지 {plan.rest:,}명은 승자 결정 후 보냅니다."
                    )
                st.write(
                    f"지금 받는 사람 **{plan.messages_now:,}명** · 예상 비용 **{format_krw(plan.cost)}**"
                    f" (건당 {format_krw(plan.price)})"
                    + (f" · 대조군 {plan.holdout:,}명" if plan.holdout else "")
                )
                if plan.by_purchase_exception:
                    st.caption(
                        f"발송 가능 {plan.reachable:,}명 중 {plan.by_purchase_exception:,}명은 광고 동의 없이"
                        " 6개월 안의 같은 분류 구매로 포함되었습니다 (정보통신망법 제50조)."
                    )
                if plan.held_until:
                    st.info(
                        f"지금은 야간 광고 금지 시간입니다. 야간 수신 동의가 없는 고객에게는"
                        f" {clock.format_kst(plan.held_until)}에 발송됩니다."
                    )
                confirmed = True
                if campaign_guards.needs_confirmation(plan.messages_now):
                    confirmed = st.checkbox(
                        f"{plan.messages_now:,}명에게 {format_krw(plan.cost)} 비용으로 보냅니다",
                        key="cmp_confirm",
                    )
                if st.button("지금 보내기", key="cmp_send_now", type="primary", disabled=not confirmed):
                    bar = st.progress(0.0, text="수신자 등록 중...")

                    def _progress(done: int, total: int) -> None:
                        bar.progress(done / total if total else 1.0, text=f"수신자 등록 {done:,}/{total:,}")

                    state.pop("cmp_confirm", None)
                    feedback.run(
                        "cmp",
                        lambda session: campaigns.start(session, actor, campaign.id, progress=_progress),
                        lambda counts: (
                            f"'{campaign.name}' {'테스트 표본' if len(campaign.variants) > 1 else ''}"
                            f" 발송 대기열에 {counts['queued']:,}건 등록 (변수 없음으로 제외 {counts['skipped']:,}명,"
                            f" 야간 보류 {counts['held']:,}건, 대조군 {counts['holdout']:,}명)"
                        ),
                        highlight=lambda _: campaign.id,
                    )
                day = dates.day_select(
                    "예약 날짜",
                    clock.today_kst(),
                    key="cmp_sched_day",
                    first=clock.today_kst(),
                    last=clock.today_kst() + timedelta(days=366),
                )
                at = st.time_input(
                    "예약 시각 (KST)",
                    (clock.to_kst(clock.now()) + timedelta(hours=1)).time(),
                    key="cmp_sched_time",
                )
                when = datetime.combine(day, at, tzinfo=clock.KST)
                night = campaign_guards.night_schedule_warning(when)
                night_ok = True
                if night:
                    st.warning(night, icon=":material/bedtime:")
                    night_ok = st.checkbox(
                        "야간 보류를 확인했고 이 시각으로 예약합니다", key="cmp_sched_night_ok"
                    )
                schedule_ok = night_ok
                if campaign_guards.needs_confirmation(plan.messages_now):
                    counted_ok = st.checkbox(
                        f"예약 시각에 {campaign_guards.confirmation_text(plan.messages_now, plan.cost)}",
                        key="cmp_sched_confirm",
                    )
                    schedule_ok = night_ok and counted_ok
                if st.button("예약하기", key="cmp_schedule", disabled=not schedule_ok):
                    state.pop("cmp_sched_night_ok", None)
                    state.pop("cmp_sched_confirm", None)
                    feedback.run(
                        "cmp",
                        lambda session: campaigns.schedule(session, actor, campaign.id, when),
                        f"{clock.format_kst(when)}에 발송하도록 예약했습니다."
                        + (" 야간 수신 동의가 없는 고객은 08:00에 받습니다." if night else ""),
                        highlight=lambda _: campaign.id,
                    )
            if campaign.status == CampaignStatus.SCHEDULED:
                st.info(f"{clock.format_kst(campaign.scheduled_at)}에 발송 예약됨")
        if campaign.status == CampaignStatus.TESTING:
            with session_scope(engine) as session:
                result = campaigns.results(session, campaign.id)
            st.subheader("테스트 결과")
            show_rows(
                [
                    {
                        "안": r.variant,
                        "받은 사람": r.recipients,
                        "전달": r.delivered,
                        "클릭": r.clickers,
                        "클릭률": f"{r.click_rate:.1%}",
                        "주문": r.orders,
                        "매출": r.revenue,
                    }
                    for r in result.variants
                ],
                key="cmp_test_results",
            )
            hours = int(campaign.options.get("test_window_hours", 24))
            ends = (campaign.test_sent_at or clock.now()) + timedelta(hours=hours)
            st.caption(f"테스트 시간 종료: {clock.format_kst(ends)}")
            pick = st.selectbox(
                "나머지에게 보낼 안",
                ["규칙대로 자동 선택"] + [v["key"] for v in campaign.variants],
                key="cmp_winner",
                format_func=lambda v: v if v == "규칙대로 자동 선택" else f"{v}안",
            )
            st.caption(
                f"자동 선택 규칙: {campaigns.WINNER_RULES[campaign.options.get('winner_rule', 'click_rate')]}"
            )
            with session_scope(engine) as session:
                rest_plan = campaigns.plan(session, campaign.id)
            concerns = campaign_guards.winner_send_concerns(
                now=clock.now(),
                test_started=campaign.test_sent_at or clock.now(),
                window=timedelta(hours=hours),
                clickers=[r.clickers for r in result.variants],
            )
            for concern in concerns:
                st.warning(concern, icon=":material/hourglass_top:")
            winner_ok = True
            if concerns:
                winner_ok = st.checkbox("그래도 지금 승자를 정해 보냅니다", key="cmp_winner_early_ok")
            if campaign_guards.needs_confirmation(rest_plan.rest):
                counted_ok = st.checkbox(
                    f"나머지 {campaign_guards.confirmation_text(rest_plan.rest, rest_plan.rest * rest_plan.price)}",
                    key="cmp_winner_confirm",
                )
                winner_ok = winner_ok and counted_ok
            if st.button(
                "승자를 나머지 모두에게 보내기", key="cmp_send_winner", type="primary", disabled=not winner_ok
            ):
                bar = st.progress(0.0, text="수신자 등록 중...")
                state.pop("cmp_winner_early_ok", None)
                state.pop("cmp_winner_confirm", None)
                feedback.run(
                    "cmp",
                    lambda session: campaigns.send_winner(
                        session,
                        actor,
                        campaign.id,
                        variant=None if pick == "규칙대로 자동 선택" else pick,
                        progress=lambda d, t: bar.progress(d / t if t else 1.0, text=f"{d:,}/{t:,}"),
                    ),
                    lambda counts: (
                        f"승자 안을 나머지 {counts['queued']:,}명에게 보내도록 대기열에 등록했습니다."
                        + (
                            f" 오늘 광고 한도를 채운 {counts['over_limit']:,}명은 다음 날 보냅니다."
                            if counts.get("over_limit")
                            else ""
                        )
                    ),
                    highlight=lambda _: campaign.id,
                )
        # Every campaign listed here is draft, scheduled or testing: cancellable.
        if st.button("캠페인 취소", key="cmp_cancel"):
            feedback.run(
                "cmp",
                lambda session: campaigns.cancel(session, actor, campaign.id),
                f"'{campaign.name}' 캠페인을 취소했습니다.",
                highlight=lambda _: campaign.id,
            )

# ---------------------------------------------------------------- 결과
with tab_results:
    with session_scope(engine) as session:
        listed = campaigns.list_campaigns(session)
    show_rows(
        [
            {
                "캠페인": r.name,
                "상태": campaign_state(r.status, r.winner),
                "안": r.variants,
                "승자": f"{r.winner}안" if r.winner else "-",
                "대상": r.recipients,
                "메시지": r.messages,
                "시작": r.started_at or r.scheduled_at,
                "생성": r.created_at,
            }
            for r in listed
        ],
        empty="아직 캠페인이 없습니다.",
        key="cmp_list",
        highlight=lambda i: listed[i].id == changed,
    )
    started = [r for r in listed if r.started_at is not None]
    if started:
        names = {r.id: r.name for r in started}
        _follow("cmp_result_pick", list(names))
        chosen = st.selectbox(
            "결과 볼 캠페인",
            list(names),
            format_func=names.get,
            key="cmp_result_pick",
            on_change=lambda: _select(state["cmp_result_pick"]),
        )
        with session_scope(engine) as session:
            result = campaigns.results(session, chosen)
        rows = [*result.variants, *([result.holdout] if result.holdout else []), result.total]
        show_rows(
            [
                {
                    "안": r.variant,
                    "대상": r.recipients,
                    "제외(변수)": r.skipped,
                    "대기": r.queued,
                    "보류(한도·야간)": r.held,
                    "발송": r.sent,
                    "전달": r.delivered,
                    "실패": r.failed,
                    "클릭": r.clicks,
                    "주문": r.orders,
                    "매출": r.revenue,
                    "구매 전환": f"{r.conversion_rate:.1%}",
                }
                for r in rows
            ],
            key="cmp_results",
        )
        failures = result.total.failed_by_reason
        if failures:
            st.caption("실패 사유: " + " · ".join(f"{k} {v:,}건" for k, v in failures.items()))
        st.caption(f"매출 귀속: 마지막 클릭 후 {result.attribution_days}일 이내 주문")
        if result.lift is not None:
            st.metric("대조군 대비 구매 전환 향상", f"{result.lift:+.0%}")
        elif result.holdout:
            st.caption("대조군 전환이 아직 없어 향상률을 계산할 수 없습니다.")
