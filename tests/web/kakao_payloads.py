"""Kakao i Open Builder skill payloads as Open Builder sends them (CONTRACTS.md)."""

from __future__ import annotations

from typing import Any


def skill_payload(utterance: Any, user_key: Any = "pfKey-abc123", *, bot_user_key: Any = "botKey-1",
                  is_friend: bool = True) -> dict[str, Any]:
    properties: dict[str, Any] = {"isFriend": is_friend}
    if user_key is not None:
        properties["plusfriendUserKey"] = user_key
    user: dict[str, Any] = {"type": "botUserKey", "properties": properties}
    if bot_user_key is not None:
        user["id"] = bot_user_key
    return {
        "intent": {"id": "intent-1", "name": "문의 접수"},
        "userRequest": {
            "timezone": "Asia/Seoul",
            "params": {"ignoreMe": "true"},
            "block": {"id": "block-1", "name": "문의 접수"},
            "utterance": utterance,
            "lang": None,
            "user": user,
        },
        "bot": {"id": "bot-1", "name": "채널데스크 샵"},
        "action": {"name": "inquiry", "clientExtra": None, "params": {}, "id": "action-1", "detailParams": {}},
    }
