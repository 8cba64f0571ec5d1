"""Segment rules as staff build them (and as saved JSON may hold them): every value checked with a
clear Korean reason, periods in KST days, and rules that can never hold together refused before
any customer is counted. Pure: no database."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from core.campaigns import segments
from core.clock import KST
from core.errors import ValidationFailed

NOW = datetime(2027, 3, 15, 3, 0, tzinfo=UTC)  # 12:00 KST


def kst_midnight(day: date) -> datetime:
    return datetime.combine(day, datetime.min.time(), tzinfo=KST).astimezone(UTC)


# ------------------------------------------------------------------ numbers


@pytest.mark.parametrize(
    ("rule", "key", "minimum", "expected"),
    [
        ({"min_amount": 100_000}, "min_amount", 0, 100_000),
        ({"min_amount": "100000"}, "min_amount", 0, 100_000),  # from a text box
        ({"min_amount": 0}, "min_amount", 0, 0),  # exactly the minimum
        ({"days": 1}, "days", 1, 1),
        ({"days": 36_500}, "days", 1, 36_500),  # 100 years: the longest period
        ({"min_amount": 10**12}, "min_amount", 0, 10**12),  # the largest amount
        ({"min_amount": None}, "min_amount", 0, None),
        ({"min_amount": ""}, "min_amount", 0, None),
        ({}, "min_amount", 0, None),
    ],
)
def test_rule_numbers_are_read_up_to_their_limits(rule, key, minimum, expected):
    assert segments._int(rule, key, minimum=minimum, required=False) == expected


@pytest.mark.parametrize(
    ("rule", "key", "minimum", "reason"),
    [
        (
            {"type": "spent"},
            "min_amount",
            1,
            "최근 N일 구매액 X원 이상 \\(VIP\\): 'min_amount' 값이 필요합니다",
        ),
        ({"type": "spent", "min_amount": ""}, "min_amount", 1, "'min_amount' 값이 필요합니다"),
        ({"type": "nonsense"}, "days", 1, "^조건: 'days' 값이 필요합니다$"),
        ({"days": "열흘"}, "days", 1, "^'days' 값은 숫자여야 합니다: '열흘'$"),
        ({"days": [3]}, "days", 1, "숫자여야"),
        ({"days": float("inf")}, "days", 1, "숫자여야"),
        ({"days": 0}, "days", 1, "^'days' 값은 1 이상이어야 합니다$"),
        ({"min_amount": -1}, "min_amount", 0, "^'min_amount' 값은 0 이상이어야 합니다$"),
        ({"days": 36_501}, "days", 1, "^'days' 값이 너무 큽니다: 36,501 \\(최대 36,500\\)$"),
        ({"overdue_days": 36_501}, "overdue_days", 0, "최대 36,500"),
        ({"min_amount": 10**12 + 1}, "min_amount", 0, "최대 1,000,000,000,000"),
        ({"min": 36_501}, "min", 0, None),  # not a day count: the amount limit applies
    ],
)
def test_rule_numbers_outside_their_limits_are_refused_in_korean(rule, key, minimum, reason):
    if reason is None:
        assert segments._int(rule, key, minimum=minimum) == 36_501
        return
    with pytest.raises(ValidationFailed, match=reason):
        segments._int(rule, key, minimum=minimum)


# ------------------------------------------------------------------ lists and dates


@pytest.mark.parametrize(
    ("value", "expected"),
    [([1, 2], [1, 2]), (["3", " 4 "], [3, 4]), ((5,), [5]), ([], []), (None, [])],
)
def test_product_ids_are_a_list_of_numbers(value, expected):
    assert segments._ids({"product_ids": value}) == expected


@pytest.mark.parametrize("value", [[True], [1.5], ["a"], ["-1"], [None], "1,2", 3, {"id": 1}])
def test_anything_else_as_product_ids_is_refused(value):
    with pytest.raises(ValidationFailed, match="^'product_ids' 값은 상품 번호 목록이어야 합니다"):
        segments._ids({"product_ids": value})


def test_texts_are_a_list_of_strings():
    assert segments._texts({"statuses": ["active", "paused"]}, "statuses") == ["active", "paused"]
    assert segments._texts({"statuses": ("active",)}, "statuses") == ["active"]
    assert segments._texts({}, "statuses") == []
    for bad in ("active", ["active", 1], [None]):
        with pytest.raises(ValidationFailed, match="^'statuses' 값은 글자 목록이어야 합니다"):
            segments._texts({"statuses": bad}, "statuses")


@pytest.mark.parametrize(
    ("value", "expected"),
    [("2027-03-01", date(2027, 3, 1)), (date(2027, 3, 1), date(2027, 3, 1)), (None, None), ("", None)],
)
def test_rule_dates_are_iso_days(value, expected):
    assert segments._date(value, "start") == expected


@pytest.mark.parametrize("value", ["2027-02-30", "2027/03/01", "어제", "03-01"])
def test_a_malformed_rule_date_is_refused(value):
    with pytest.raises(ValidationFailed, match="^'start' 날짜 형식이 올바르지 않습니다 \\(YYYY-MM-DD\\)"):
        segments._date(value, "start")


# ------------------------------------------------------------------ periods


@pytest.mark.parametrize(
    ("rule", "period"),
    [
        ({"days": 30}, (NOW - timedelta(days=30), None)),  # the last 30 days up to now
        ({"days": 1}, (NOW - timedelta(days=1), None)),
        ({"days": 30, "start": "2020-01-01"}, (NOW - timedelta(days=30), None)),  # days wins
        (
            {"start": "2027-03-01", "end": "2027-03-31"},
            (kst_midnight(date(2027, 3, 1)), kst_midnight(date(2027, 4, 1))),
        ),
        (
            {"start": "2027-03-01", "end": "2027-03-01"},
            (kst_midnight(date(2027, 3, 1)), kst_midnight(date(2027, 3, 2))),
        ),
        ({"start": "2027-03-01"}, (kst_midnight(date(2027, 3, 1)), None)),
        ({"end": "2027-02-28"}, (None, kst_midnight(date(2027, 3, 1)))),  # the end day is included
        ({}, (None, None)),
    ],
)
def test_a_rule_period_is_the_last_n_days_or_whole_kst_days(rule, period):
    assert segments._period(rule, NOW) == period


def test_a_period_ending_before_it_starts_is_refused():
    with pytest.raises(
        ValidationFailed, match="기간의 시작\\(2027-03-02\\)이 끝\\(2027-03-01\\)보다 늦습니다"
    ):
        segments._period({"start": "2027-03-02", "end": "2027-03-01"}, NOW)


# ------------------------------------------------------------------ the rule lists


def test_rules_have_include_and_exclude_lists_of_known_types():
    include, exclude = segments._rules_lists(
        {"include": [{"type": "spent", "min_amount": 1}], "exclude": [{"type": "dormant", "days": 90}]}
    )
    assert include == [{"type": "spent", "min_amount": 1}] and exclude == [{"type": "dormant", "days": 90}]
    include, exclude = segments._rules_lists({"include": ({"type": "channel_friend"},)})
    assert (include, exclude) == ([{"type": "channel_friend"}], [])


@pytest.mark.parametrize(
    ("rules", "reason"),
    [
        (None, "빈 세그먼트"),
        ({}, "빈 세그먼트"),
        ({"include": [], "exclude": [{"type": "dormant", "days": 9}]}, "빈 세그먼트"),
        ([{"type": "spent"}], "^세그먼트 조건 형식이 잘못되었습니다"),
        ({"include": [{"type": "platinum"}]}, "^알 수 없는 세그먼트 조건입니다 \\(사용 가능: 최근 N일"),
        ({"include": [{"kind": "spent"}]}, "알 수 없는 세그먼트 조건"),
        ({"include": [{"type": 3}]}, "알 수 없는 세그먼트 조건"),
        ({"include": ["spent"]}, "알 수 없는 세그먼트 조건"),
        ({"include": {"type": "spent"}}, "알 수 없는 세그먼트 조건"),
        (
            {"include": [{"type": "dormant", "days": 30}], "exclude": [{"type": "x"}]},
            "알 수 없는 세그먼트 조건",
        ),
        ({"include": [{"type": "dormant", "days": -3}]}, "'days' 값은 0 이상"),
        (
            {"include": [{"type": "dormant"}], "exclude": [{"type": "spent", "min_amount": "많이"}]},
            "숫자여야",
        ),
    ],
)
def test_malformed_rules_are_refused_in_korean(rules, reason):
    with pytest.raises(ValidationFailed, match=reason):
        segments._rules_lists(rules)


@pytest.mark.parametrize(
    ("rule", "reason"),
    [
        ({"type": "spent", "min_amount": "x"}, "'min_amount' 값은 숫자여야"),
        ({"type": "dormant", "days": "x"}, "'days' 값은 숫자여야"),
        ({"type": "repurchase_due", "within_days": -1}, "'within_days' 값은 0 이상"),
        ({"type": "repurchase_due", "overdue_days": "x"}, "'overdue_days' 값은 숫자여야"),
        ({"type": "order_count", "min": "x"}, "'min' 값은 숫자여야"),
        ({"type": "order_count", "max": -1}, "'max' 값은 0 이상"),
        ({"type": "bought", "product_ids": ["x"]}, "상품 번호 목록"),
        ({"type": "subscription", "statuses": "active"}, "글자 목록"),
        ({"type": "bought", "category": 3}, "^카테고리는 글자여야 합니다: 3$"),
        ({"type": "bought", "start": "3월"}, "'start' 날짜 형식"),
        ({"type": "bought", "end": "3월"}, "'end' 날짜 형식"),
    ],
)
def test_every_value_of_a_saved_rule_is_checked(rule, reason):
    with pytest.raises(ValidationFailed, match=reason):
        segments._check_values(rule)


def test_a_rule_with_valid_values_passes_the_check():
    segments._check_values(
        {
            "type": "bought",
            "product_ids": [1],
            "category": "커피",
            "start": "2027-01-01",
            "end": "2027-03-01",
            "days": 0,
            "statuses": [],
        }
    )


# ------------------------------------------------------------------ contradictions


def _problems(include, exclude=()):
    return segments.contradictions({"include": list(include), "exclude": list(exclude)})


@pytest.mark.parametrize(
    ("include", "exclude", "expected"),
    [
        # the same rule included and excluded
        (
            [{"type": "spent", "min_amount": 1, "days": 30}],
            [{"type": "spent", "days": 30, "min_amount": 1}],
            ["같은 조건이 포함과 제외에 모두 있습니다: 최근 N일 구매액 X원 이상 (VIP)"],
        ),
        (
            [{"type": "spent", "min_amount": 1, "days": 30}],
            [{"type": "spent", "days": 31, "min_amount": 1}],
            [],
        ),
        # friend and not friend
        (
            [{"type": "channel_friend", "value": True}, {"type": "channel_friend", "value": False}],
            [],
            ["채널 친구 조건이 '친구'와 '친구 아님'을 동시에 요구합니다"],
        ),
        ([{"type": "channel_friend"}, {"type": "channel_friend", "value": True}], [], []),
        (
            [{"type": "channel_friend", "value": True}],
            [{"type": "channel_friend"}],  # the same meaning, written differently
            [
                "채널 친구 조건을 포함하면서 제외합니다",
            ],
        ),
        ([{"type": "channel_friend", "value": False}], [{"type": "channel_friend", "value": True}], []),
        (
            [{"type": "channel_friend"}],  # no value: "a friend", on the include side too
            [{"type": "channel_friend", "value": True}],
            ["채널 친구 조건을 포함하면서 제외합니다"],
        ),
        ([{"type": "channel_friend"}], [{"type": "channel_friend", "value": False}], []),
        (
            [{"type": "channel_friend", "value": False}],
            [{"type": "channel_friend", "value": False, "x": 1}],
            ["채널 친구 조건을 포함하면서 제외합니다"],
        ),
        ([{"type": "channel_friend", "value": True}], [{"type": "dormant", "days": 3}], []),
        # dormant for N days against bought / spent / ordered within the last M <= N days
        (
            [{"type": "dormant", "days": 90}, {"type": "bought", "category": "커피", "days": 90}],
            [],
            ["90일간 주문이 없는 고객은 최근 90일 안에 구매했을 수 없습니다"],
        ),
        (
            [{"type": "dormant", "days": 90}, {"type": "spent", "min_amount": 1, "days": 30}],
            [],
            ["90일간 주문이 없는 고객은 최근 30일 안에 구매했을 수 없습니다"],
        ),
        ([{"type": "dormant", "days": 90}, {"type": "bought", "category": "커피", "days": 91}], [], []),
        (
            [
                {"type": "dormant", "days": 30},
                {"type": "dormant", "days": 90},
                {"type": "spent", "min_amount": 1, "days": 60},
            ],
            [],
            ["90일간 주문이 없는 고객은 최근 60일 안에 구매했을 수 없습니다"],
        ),  # the longest quiet period
        ([{"type": "dormant", "days": 90}, {"type": "spent", "min_amount": 1}], [], []),  # all time: fine
        (
            [{"type": "dormant", "days": 90}, {"type": "order_count", "min": 1, "days": 90}],
            [],
            ["90일간 주문이 없는 고객은 최근 90일 주문 횟수가 0입니다"],
        ),
        ([{"type": "dormant", "days": 90}, {"type": "order_count", "min": 0, "days": 30}], [], []),
        ([{"type": "dormant", "days": 90}, {"type": "order_count", "min": 2, "days": 91}], [], []),
        ([{"type": "dormant", "days": 90}, {"type": "order_count", "max": 3, "days": 30}], [], []),
        # never ordered against a purchase rule
        (
            [{"type": "order_count", "max": 0}, {"type": "spent", "min_amount": 1}],
            [],
            ["주문이 한 번도 없는 고객에게 구매 조건을 함께 걸었습니다"],
        ),
        (
            [{"type": "order_count", "max": "0"}, {"type": "first_purchase", "days": 30}],
            [],
            ["주문이 한 번도 없는 고객에게 구매 조건을 함께 걸었습니다"],
        ),
        ([{"type": "order_count", "max": 0}, {"type": "dormant", "days": 30, "include_never": True}], [], []),
        ([{"type": "order_count", "max": 1}, {"type": "spent", "min_amount": 1}], [], []),
        ([{"type": "order_count", "max": ""}, {"type": "spent", "min_amount": 1}], [], []),
        ([{"type": "order_count", "max": 0, "days": 30}, {"type": "spent", "min_amount": 1}], [], []),
        (
            [{"type": "order_count", "max": 0, "start": "2027-01-01"}, {"type": "spent", "min_amount": 1}],
            [],
            [],
        ),
        (
            [{"type": "order_count", "max": 0, "end": "2027-01-01"}, {"type": "spent", "min_amount": 1}],
            [],
            [],
        ),
        ([{"type": "order_count", "max": 0}, {"type": "channel_friend"}], [], []),
        (
            [{"type": "order_count", "max": 0}, {"type": "repurchase_due"}],
            [],
            ["주문이 한 번도 없는 고객에게 구매 조건을 함께 걸었습니다"],
        ),
        # no subscription against a subscription status
        (
            [
                {"type": "subscription", "statuses": ["none"]},
                {"type": "subscription", "statuses": ["active"]},
            ],
            [],
            ["정기결제가 없는 고객과 정기결제 상태 조건을 동시에 요구합니다"],
        ),
        (
            [
                {"type": "subscription", "statuses": ["none", "active"]},
                {"type": "subscription", "statuses": ["active"]},
            ],
            [],
            [],
        ),
        (
            [{"type": "subscription", "statuses": ["none"]}, {"type": "subscription", "statuses": ["none"]}],
            [],
            [],
        ),
        ([{"type": "subscription", "statuses": ["active"]}], [], []),
    ],
)
def test_rules_that_can_never_hold_together_are_named(include, exclude, expected):
    assert _problems(include, exclude) == expected


def test_a_rule_number_is_at_least_0_unless_told_otherwise():
    assert segments._int({"min": 0}, "min") == 0
    with pytest.raises(ValidationFailed, match="^'min' 값은 0 이상이어야 합니다$"):
        segments._int({"min": -1}, "min")


@pytest.mark.parametrize(
    ("rule", "reason"),
    [
        ({"days": 0}, "^'days' 값은 1 이상이어야 합니다$"),  # "the last 0 days" is no period
        ({"start": "3월 1일"}, "^'start' 날짜 형식이 올바르지 않습니다"),
        ({"end": "3월 31일"}, "^'end' 날짜 형식이 올바르지 않습니다"),
    ],
)
def test_a_period_names_the_value_that_is_wrong(rule, reason):
    with pytest.raises(ValidationFailed, match=reason):
        segments._period(rule, NOW)


def test_rule_list_errors_say_what_to_do():
    with pytest.raises(ValidationFailed) as unknown:
        segments._rules_lists({"include": [{"type": "platinum"}]})
    assert (
        str(unknown.value)
        == "알 수 없는 세그먼트 조건입니다 (사용 가능: " + ", ".join(segments.RULE_LABELS.values()) + ")"
    )
    with pytest.raises(ValidationFailed) as empty:
        segments._rules_lists({"include": []})
    assert str(empty.value) == "세그먼트에 포함 조건을 하나 이상 추가하세요 (빈 세그먼트)"


@pytest.mark.parametrize("kind", ["spent", "bought", "dormant", "first_purchase", "repurchase_due"])
def test_never_ordered_contradicts_every_purchase_rule(kind):
    problems = _problems([{"type": "order_count", "max": 0}, {"type": kind, "days": 30}])
    assert "주문이 한 번도 없는 고객에게 구매 조건을 함께 걸었습니다" in problems
