"""Settings from the environment or .streamlit/secrets.toml; every key has a working default.

A fresh clone runs with nothing set: SQLite in data/, the sandbox gateway, the outbox provider.
"""

from __future__ import annotations

import os
import re
import tomllib
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SECRETS_FILE = PROJECT_ROOT / ".streamlit" / "secrets.toml"

GatewayName = Literal["sandbox", "kakaopay", "toss"]


_URL_PASSWORD = re.compile(r"(://[^:/@\s]*:)[^@\s]*@")


def redact_url(text: str) -> str:
    """A URL (or any text holding one) with its password replaced by ***: errors show where, not the secret."""
    return _URL_PASSWORD.sub(r"\1***@", text)


class ConfigError(ValueError):
    """A setting is unusable; the message says which one and why (shown to the operator)."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", case_sensitive=False)

    database_url: str = f"sqlite:///{PROJECT_ROOT / 'data' / 'channeldesk.db'}"
    shop_name: str = "채널데스크 샵"
    shop_phone: str = "02-000-0000"
    opt_out_number: str = "080-000-0000"

    payment_gateway: GatewayName = "sandbox"
    payment_backup_gateway: GatewayName | None = None
    kakaopay_base_url: str = "https://open-api.kakaopay.com"
    kakaopay_secret_key: str | None = Field(default=None, repr=False)
    kakaopay_cid: str = "TC0ONETIME"
    kakaopay_subscription_cid: str = "TCSUBSCRIP"
    toss_base_url: str = "https://api.tosspayments.com"
    toss_secret_key: str | None = Field(default=None, repr=False)
    public_base_url: str = "http://localhost:8501"
    # The header value Kakao i Open Builder sends with every skill call (set in the skill's header
    # settings); unset: the owner makes one on 설정 → 연동 (stored in the settings table).
    kakao_skill_secret: str | None = Field(default=None, repr=False)
    # Signs the customer pages' CSRF tokens (web/customer/render.py); unset, one random key is kept in the store.
    web_secret: str | None = Field(default=None, repr=False)

    message_provider: Literal["outbox", "solapi"] = "outbox"
    solapi_base_url: str = "https://api.solapi.com"
    solapi_api_key: str | None = Field(default=None, repr=False)
    solapi_api_secret: str | None = Field(default=None, repr=False)
    solapi_sender: str | None = None
    solapi_pfid: str | None = None
    message_rate_per_second: float = 100.0

    session_idle_minutes: int = 60
    session_max_minutes: int = 12 * 60  # absolute lifetime of a login, however active
    login_max_failures: int = 5  # free failures per username and per address before the backoff starts
    # The backoff doubles per failure up to these caps: short per username, so the owner is never kept
    # out long by someone else's guesses; long per address, which slows one guesser down.
    login_user_backoff_max_seconds: float = 4.0
    login_address_backoff_max_seconds: float = 900.0

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str) -> str:
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            url = make_url(value)
        except ValueError as exc:  # e.g. a port that is not a number (the message would be int()'s)
            if isinstance(exc, ArgumentError):
                raise ValueError(
                    f"DATABASE_URL {redact_url(value)!r} is not a database URL "
                    "(expected sqlite:///path or postgresql+psycopg://user@host/db)"
                ) from None
            raise ValueError(f"DATABASE_URL {redact_url(value)!r} has an unreadable part (port?)") from None
        except ArgumentError as exc:
            raise ValueError(
                f"DATABASE_URL {redact_url(value)!r} is not a database URL "
                "(expected sqlite:///path or postgresql+psycopg://user@host/db)"
            ) from exc
        if url.get_backend_name() not in ("sqlite", "postgresql"):
            raise ValueError(
                f"DATABASE_URL uses {url.get_backend_name()!r}; only sqlite and postgresql are supported"
            )
        if url.get_backend_name() == "postgresql" and url.drivername == "postgresql":
            # psycopg 3 is the driver we ship; a bare postgresql:// URL means it.
            value = url.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
        return value

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


def _secrets_from_file(path: Path = SECRETS_FILE) -> dict[str, object]:
    """Flat keys of .streamlit/secrets.toml, lower-cased, so they read like environment variables."""
    if not path.exists():
        return {}
    with path.open("rb") as handle:
        data = tomllib.load(handle)
    return {key.lower(): value for key, value in data.items() if not isinstance(value, dict)}


def load_settings(environ: dict[str, str] | None = None) -> Settings:
    """Environment wins over secrets.toml; errors name the variable in plain words."""
    environ = dict(os.environ if environ is None else environ)
    values: dict[str, object] = _secrets_from_file()
    for field in Settings.model_fields:
        if field.upper() in environ:
            values[field] = environ[field.upper()]
    try:
        return Settings(**values)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']).upper()}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"설정 오류 (configuration error): {problems}") from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()
