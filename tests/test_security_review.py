"""Security review checks (bench/SECURITY.md): passwords, sessions, secrets in logs, phone masking, the
audit log's coverage and immutability, and every screen's role enforcement in AppTest."""

from __future__ import annotations

import ast
import logging
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from argon2.low_level import Type
from sqlalchemy import Engine
from sqlmodel import Session

from core import clock
from core.accounts import audit
from core.accounts.actor import Actor
from core.accounts.auth import LoginFailed, authenticate, create_user, phone_for
from core.accounts.screens import SCREENS, screens_for
from core.config import ConfigError, load_settings
from core.errors import PermissionDenied
from core.messaging.phone import mask_phone
from core.models import AuditLog, Customer, Role
from core.payments.gateways.base import ApproveRequest, PaymentError, ReadyRequest
from core.payments.gateways.kakaopay import KakaoPayGateway
from tests.ui_helpers import open_app, texts

ROOT = Path(__file__).resolve().parent.parent
SECRET = "sk-live-7f3c9a-DO-NOT-LOG"
PASSWORD = "correct-horse-battery"


# --------------------------------------------------------------------------- passwords and login


def test_passwords_use_argon2id_with_at_least_owasp_parameters(session: Session) -> None:
    user = create_user(session, None, username="kim", display_name="김", role="cs", password=PASSWORD)
    from argon2 import extract_parameters

    found = extract_parameters(user.password_hash)
    assert found.type is Type.ID
    assert found.memory_cost >= 19 * 1024 and found.time_cost >= 2  # OWASP: m=19 MiB, t=2 minimum
    assert PASSWORD not in user.password_hash


def test_an_idle_session_is_logged_out(sqlite_engine: Engine, sqlite_actors) -> None:  # type: ignore[no-untyped-def]
    """The idle limit is kept in the session row: past it, the next run shows the login, not the page."""
    at = open_app(sqlite_engine, sqlite_actors["owner"])
    assert not at.exception and "ChannelDesk 로그인" not in texts(at)
    idle = load_settings({}).session_idle_minutes
    with clock.frozen(clock.now() + timedelta(minutes=idle, seconds=1)):
        at.run()
    assert "ChannelDesk 로그인" in texts(at)
    assert "로그인이 끝났습니다" in texts(at)
    assert "actor" not in at.session_state


# --------------------------------------------------------------------------- roles on every screen


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize("screen", SCREENS, ids=[s.url_path for s in SCREENS])
def test_every_screen_opens_only_for_its_roles(sqlite_engine: Engine, sqlite_actors, role: Role, screen) -> None:  # type: ignore[no-untyped-def]
    """A screen outside the role's navigation cannot be switched to; inside it, it renders."""
    at = open_app(sqlite_engine, sqlite_actors[role.value])
    if screen in screens_for(role):
        at.switch_page(screen.path).run()
        assert not at.exception, at.exception
        assert screen.title in [t.value for t in at.title]
    else:
        try:
            at.switch_page(screen.path).run()
        except Exception as exc:  # noqa: BLE001 - AppTest may refuse a page that is not in st.navigation
            refused = str(exc)
        else:
            refused = ""
        assert not refused or "page" in refused.lower(), refused
        assert screen.title not in [t.value for t in at.title], f"{role.value} opened {screen.title}"


# --------------------------------------------------------------------------- secrets


def test_secrets_are_never_logged_or_shown_in_errors(caplog, session: Session) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level(logging.DEBUG)
    environ = {"KAKAOPAY_SECRET_KEY": SECRET, "TOSS_SECRET_KEY": SECRET, "SOLAPI_API_SECRET": SECRET,
               "PAYMENT_GATEWAY": "kakaopay"}
    settings = load_settings(environ)
    assert SECRET not in repr(settings) and SECRET not in str(settings)
    with pytest.raises(ConfigError) as bad:
        load_settings({**environ, "PAYMENT_GATEWAY": "nope"})
    assert SECRET not in str(bad.value)

    # Login, right and wrong: the password is never written anywhere.
    create_user(session, None, username="park", display_name="박", role="owner", password=PASSWORD)
    session.commit()
    authenticate(session, "park", PASSWORD)
    with pytest.raises(LoginFailed) as failed:
        authenticate(session, "park", PASSWORD + "x")
    assert PASSWORD not in str(failed.value)

    # Gateway calls that fail (where a careless client would dump the request): 500, 401, a timeout.
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.headers["Authorization"] == f"SECRET_KEY {SECRET}"  # it is sent, only there
        path = request.url.path
        if path.endswith("ready"):
            return httpx.Response(500, json={"error_code": -1, "error_message": "server error"})
        if path.endswith("approve"):
            return httpx.Response(401, json={"error_code": -401, "error_message": "unauthorized"})
        raise httpx.ReadTimeout("timed out", request=request)

    gateway = KakaoPayGateway(secret_key=SECRET, base_url="https://kp.test", transport=httpx.MockTransport(handler))
    errors: list[str] = []
    for call in (
        lambda: gateway.ready(ReadyRequest(partner_order_id="O1", partner_user_id="u1", item_name="원두", quantity=1,
                              total_amount=1000, tax_free_amount=0, approval_url="a", cancel_url="c", fail_url="f")),
        lambda: gateway.approve(ApproveRequest(tid="T1", partner_order_id="O1", partner_user_id="u1", pg_token="p")),
        lambda: gateway.lookup(tid="T1"),
    ):
        try:
            call()
        except PaymentError as exc:
            errors.append(f"{exc!r} {exc} {getattr(exc, 'raw', '')}")
    assert len(errors) == 3
    everything = caplog.text + "\n".join(errors)
    assert SECRET not in everything
    assert PASSWORD not in everything


def test_secrets_come_only_from_the_environment_or_secrets_toml() -> None:
    """No secret has a default, and no source file carries a key-like literal."""
    settings = load_settings({})
    for name in ("kakaopay_secret_key", "toss_secret_key", "solapi_api_key", "solapi_api_secret"):
        assert getattr(settings, name) is None
    import re

    key_like = re.compile(r"(?i)(secret|api)_?key\s*[:=]\s*['\"][A-Za-z0-9_\-]{16,}['\"]")
    for path in [*ROOT.glob("core/**/*.py"), *ROOT.glob("pages/*.py"), *ROOT.glob("ui/*.py"), ROOT / "app.py"]:
        assert not key_like.search(path.read_text()), path
    gitignore = (ROOT / ".gitignore").read_text()
    assert "secrets.toml" in gitignore


# --------------------------------------------------------------------------- phone numbers


@pytest.mark.parametrize(
    ("phone", "masked"),
    [("010-1234-5678", "010-****-5678"), ("01012345678", "010-****-5678"), ("011-123-4567", "011-****-4567"),
     ("1234", "****"), ("", "")],
)
def test_phone_masking(phone: str, masked: str) -> None:
    assert mask_phone(phone) == masked


@pytest.mark.parametrize(("role", "whole"), [(Role.OWNER, True), (Role.CS, True), (Role.STAFF, False)])
def test_only_owner_and_cs_see_whole_phone_numbers(role: Role, whole: bool) -> None:
    shown = phone_for(Actor(1, "x", role), "010-1234-5678")
    assert (shown == "010-1234-5678") is whole
    assert ("1234" in shown) is whole


def test_staff_sees_masked_numbers_on_the_orders_screen(sqlite_engine: Engine, sqlite_actors) -> None:  # type: ignore[no-untyped-def]
    from core.payments.gateways.sandbox import SandboxGateway
    from tests.payments.helpers import paid_order

    paid_order(sqlite_engine, SandboxGateway(sqlite_engine), phone="010-2468-1357")
    shown = {}
    for role in ("staff", "cs"):
        at = open_app(sqlite_engine, sqlite_actors[role], "pages/orders.py")
        assert not at.exception, at.exception
        frame = at.dataframe[0].value
        shown[role] = list(frame["연락처"])
    assert shown["staff"] == ["010-****-1357"]
    assert shown["cs"] == ["010-2468-1357"]


# --------------------------------------------------------------------------- the audit log


def test_the_audit_log_cannot_be_changed_or_deleted(session: Session) -> None:
    owner = Actor(None, "사장님", Role.OWNER)
    row = audit.record(session, owner, "setting.change", "setting", "x", old=1, new=2)
    session.commit()
    row.detail = {"old": 1, "new": 3}
    session.add(row)
    with pytest.raises(PermissionDenied):
        session.commit()
    session.rollback()
    session.delete(session.get(AuditLog, row.id))
    with pytest.raises(PermissionDenied):
        session.commit()
    session.rollback()
    assert session.get(AuditLog, row.id).detail == {"old": 1, "new": 2}


def test_no_screen_writes_or_edits_the_audit_log() -> None:
    """Screens only call services; none touches AuditLog or the audit_log table directly."""
    for path in [*ROOT.glob("pages/*.py"), *ROOT.glob("ui/*.py"), ROOT / "app.py"]:
        source = path.read_text()
        assert "AuditLog" not in source and "audit_log" not in source, path
        assert "audit.record" not in source, path


def test_money_campaign_role_and_setting_changes_are_audited() -> None:
    """The action names the security table (test_security_roles.py) sees, by category."""
    from tests.test_security_roles import ACTIONS

    names = {a.name for a in ACTIONS if a.audited}
    assert {"refunds.refund_payment", "inquiries.refund", "links.create_payment_link",
            "order_import.import_orders"} <= names  # money
    assert {"campaigns.start", "campaigns.send_winner", "campaigns.schedule"} <= names  # campaign sends
    assert {"auth.change_role", "auth.create_user"} <= names  # roles
    assert {"settings_store.put", "inquiries.save_policy", "inquiries.save_business_hours",
            "billing.update_settings", "messaging.update_template"} <= names  # settings


def test_customer_text_never_goes_through_unsafe_html() -> None:
    """No page renders HTML it did not write itself: st.html only with constant text (a style rule)."""
    for path in [*ROOT.glob("pages/*.py"), *ROOT.glob("ui/*.py"), ROOT / "app.py"]:
        source = path.read_text()
        assert "unsafe_allow_html" not in source, path
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Call) and ast.unparse(node.func) == "st.html":
                assert all(isinstance(arg, ast.Constant) for arg in node.args) and not node.keywords, (
                    f"{path}:{node.lineno}: st.html with something other than constant text"
                )


def test_customer_names_are_stored_as_typed(session: Session) -> None:
    """Names are stored as typed (escaping is the renderer's job): the browser test shows them as text."""
    customer = Customer(name="<script>x</script>", phone="01000000000")
    session.add(customer)
    session.commit()
    assert session.get(Customer, customer.id).name == "<script>x</script>"
