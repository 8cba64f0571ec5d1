"""The inbound channels' settings, as 설정 → 연동 shows them: where to register which URL, and the
chatbot skill's shared secret (KAKAO_SKILL_SECRET, else one the owner makes here, kept in the
settings table and never written to the audit log)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from sqlmodel import Session

from core import clock
from core.accounts import audit
from core.accounts.actor import Actor, require_role
from core.config import get_settings
from core.models import Role, Setting

SKILL_PATH = "/hooks/kakao/skill"
TOSS_PATH = "/hooks/toss"
HELP_PATH = "/help"
SECRET_HEADER = "X-Skill-Secret"
SECRET_SETTING = "kakao_skill_secret"
TEST_USER_KEY = "channeldesk-test"  # the 설정 test button's user: answered, never filed


@dataclass(frozen=True)
class Endpoint:
    name: str
    url: str
    where: str


def endpoints(base_url: str | None = None) -> list[Endpoint]:
    """The URLs to register, on this server's public address (PUBLIC_BASE_URL)."""
    base = (base_url or get_settings().public_base_url).rstrip("/")
    return [
        Endpoint("카카오톡 챗봇 스킬", base + SKILL_PATH,
                 f"카카오 i 오픈빌더 → 스킬 → 스킬 서버 URL. 헤더 값 입력에 {SECRET_HEADER}: (아래 비밀값)"),
        Endpoint("토스페이먼츠 웹훅", base + TOSS_PATH,
                 "토스페이먼츠 개발자센터 → 웹훅 → 등록 (결제 상태 변경, 취소 상태 변경 이벤트)"),
        Endpoint("고객 문의 페이지", base + HELP_PATH, "카카오톡 채널 관리자센터 → 채널 홈 버튼/메뉴의 링크"),
    ]


def secret_source(session: Session) -> str:
    """"env", "store" or "none"."""
    if get_settings().kakao_skill_secret:
        return "env"
    row = session.get(Setting, SECRET_SETTING)
    return "store" if row is not None and row.value else "none"


def skill_secret(session: Session) -> str | None:
    if get_settings().kakao_skill_secret:
        return get_settings().kakao_skill_secret
    row = session.get(Setting, SECRET_SETTING)
    return str(row.value) if row is not None and row.value else None


def new_skill_secret(session: Session, actor: Actor) -> str:
    """Make (or replace) the stored secret; owner only; audited without the value."""
    require_role(actor, Role.OWNER)
    value = secrets.token_urlsafe(32)
    row = session.get(Setting, SECRET_SETTING) or Setting(key=SECRET_SETTING)
    replaced = row.value is not None
    row.value = value
    row.updated_at = clock.now()
    row.updated_by = actor.id
    session.add(row)
    audit.record(session, actor, "integration.skill_secret", "setting", SECRET_SETTING, replaced=replaced)
    return value
