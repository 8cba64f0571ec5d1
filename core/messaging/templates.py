"""Templates with #{variable} slots: rendering, AlimTalk limits and the approved-template pre-flight.

Kakao refuses an AlimTalk whose text differs from the approved template (result 3016) or whose
variable is too long (3025); checking before sending gives staff a clear reason at once instead of a
provider code later.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from core.models import MessageKind, Template

VARIABLE = re.compile(r"#\{([^{}#]+)\}")
MAX_BODY_CHARS = 1000
MAX_VARIABLES = 40
# Kakao does not publish one figure for every template; keep it a setting (messaging.max_variable_length).
DEFAULT_MAX_VARIABLE_LENGTH = 500
META_PREFIX = "__"  # variables starting with this are for the pipeline, never rendered


class TemplateError(ValueError):
    """The message cannot be rendered or would be refused; str(exc) is the reason shown to staff."""


class TemplateNotRegistered(TemplateError):
    """The template has no AlimTalk template id yet: the message waits (held) until the owner
    enters it on 설정, it does not fail."""


def not_registered_reason(key: str) -> str:
    return f"알림톡 템플릿 ID 미등록: {key} (설정 > 메시지 템플릿에서 ID를 등록하면 발송됩니다)"


def variable_names(body: str) -> list[str]:
    """The #{slots} of a body, in order, without repeats."""
    return list(_variable_names(body))


@lru_cache(maxsize=256)
def _variable_names(body: str) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for name in VARIABLE.findall(body):
        seen.setdefault(name.strip(), None)
    return tuple(seen)


def check_body(body: str) -> None:
    """AlimTalk shape limits on a template body (used when a template is saved and before sending)."""
    _check_body(body)


@lru_cache(maxsize=256)
def _check_body(body: str) -> None:
    if not body.strip():
        raise TemplateError("템플릿 본문이 비어 있습니다")
    if len(body) > MAX_BODY_CHARS:
        raise TemplateError(f"본문이 {MAX_BODY_CHARS:,}자를 넘습니다 ({len(body):,}자)")
    names = variable_names(body)
    if len(names) > MAX_VARIABLES:
        raise TemplateError(f"변수가 {MAX_VARIABLES}개를 넘습니다 ({len(names)}개)")


def render(
    body: str, variables: Mapping[str, Any], *, max_variable_length: int = DEFAULT_MAX_VARIABLE_LENGTH
) -> str:
    """Fill every #{slot}; a slot with no value or a value over the limit is a TemplateError."""
    check_body(body)
    for name in variable_names(body):
        if name not in variables or variables[name] is None:
            raise TemplateError(f"템플릿 변수 #{{{name}}}의 값이 없습니다 (알 수 없는 변수)")
        value = str(variables[name])
        if len(value) > max_variable_length:
            raise TemplateError(
                f"변수 #{{{name}}}가 너무 깁니다 ({len(value):,}자 > {max_variable_length:,}자)"
            )
    text = VARIABLE.sub(lambda m: str(variables[m.group(1).strip()]), body)
    if len(text) > MAX_BODY_CHARS:
        raise TemplateError(f"완성된 메시지가 {MAX_BODY_CHARS:,}자를 넘습니다 ({len(text):,}자)")
    return text


def wire_variables(body: str, variables: Mapping[str, Any]) -> dict[str, str]:
    """Variables as Solapi wants them: {"#{고객명}": "홍길동"} for the slots the body uses."""
    return {f"#{{{name}}}": str(variables[name]) for name in variable_names(body) if name in variables}


def preflight(
    template: Template | None,
    variables: Mapping[str, Any],
    *,
    require_alimtalk_id: bool = False,
    max_variable_length: int = DEFAULT_MAX_VARIABLE_LENGTH,
) -> str:
    """Render a message from its template, refusing what Kakao would refuse; returns the text."""
    if template is None:
        raise TemplateError("템플릿이 없습니다")
    if not template.is_active:
        raise TemplateError(f"사용 중지된 템플릿입니다: {template.key}")
    if template.kind == MessageKind.INFORMATIONAL:
        # AlimTalk: the text must be the approved one, slot for slot.
        if template.approved_body is None:
            raise TemplateError(f"승인된 템플릿 본문이 없습니다: {template.key}")
        if template.body != template.approved_body:
            raise TemplateError(f"템플릿 본문이 승인된 내용과 다릅니다 (재승인 필요): {template.key}")
        if require_alimtalk_id and not template.alimtalk_template_id:
            raise TemplateNotRegistered(not_registered_reason(template.key))
    return render(template.body, variables, max_variable_length=max_variable_length)
