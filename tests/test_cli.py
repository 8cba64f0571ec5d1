"""The operator CLI: each mistake gets one clear line and exit code 2; nothing stored is lost."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select
from sqlmodel import Session

from core import cli
from core.accounts.auth import authenticate
from core.config import PROJECT_ROOT
from core.db import make_engine
from core.demo import seed
from core.models import AuditLog, Customer, StaffUser

SMALL_SEED = ["seed", "--demo", "--customers", "60", "--orders", "400", "--seed", "3", "--quiet"]


@pytest.fixture
def db_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("DATABASE_URL", url)
    return url


def run(argv: list[str], stdin: str = "") -> int:
    return cli.main(argv, stdin=io.StringIO(stdin))


def _count(url: str, model: Any) -> int:
    engine = make_engine(url)
    try:
        with Session(engine) as session:
            return session.execute(select(func.count()).select_from(model)).scalar_one()
    finally:
        engine.dispose()


def _one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("오류 (error):"), err
    return lines[0]


def test_init_creates_the_database(db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["init"]) == 0
    assert (tmp_path / "cli.db").exists()
    assert "database ready" in capsys.readouterr().out
    assert run(["init"]) == 0  # idempotent upgrade


def test_seed_demo_then_refuse_then_if_empty_then_reset(
    db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(SMALL_SEED) == 0
    out = capsys.readouterr().out
    assert "demo data created" in out and f"owner / {seed.DEMO_PASSWORD}" in out
    assert _count(db_url, Customer) == 60

    assert run([*SMALL_SEED[:-1], "--seed", "4"]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "--reset" in line
    assert _count(db_url, Customer) == 60

    assert run(["seed", "--demo", "--if-empty"]) == 0
    assert "skipped" in capsys.readouterr().out
    assert _count(db_url, Customer) == 60

    assert run(["seed", "--demo", "--customers", "25", "--orders", "100", "--reset", "--quiet"]) == 0
    assert _count(db_url, Customer) == 25
    assert _count(db_url, StaffUser) == 3


def test_user_add_reads_the_password_from_stdin_and_never_prints_it(
    db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    password = "correct-horse-42"
    assert (
        run(
            ["user", "add", "--username", "jimin", "--role", "cs", "--name", "박지민", "--password-stdin"],
            stdin=password + "\n",
        )
        == 0
    )
    out, err = capsys.readouterr()
    assert "jimin" in out and password not in out + err
    engine = make_engine(db_url)
    with Session(engine) as session:
        user = session.execute(select(StaffUser).where(StaffUser.username == "jimin")).scalar_one()
        assert password not in user.password_hash
        session.commit()  # the login checks on its own connections
        assert authenticate(engine, "jimin", password).name == "박지민"
        audit = session.execute(select(AuditLog).where(AuditLog.action == "user.create")).scalar_one()
        assert password not in str(audit.detail)
    engine.dispose()
    assert run(["user", "list"]) == 0
    listing = capsys.readouterr().out
    assert "jimin" in listing and "박지민" in listing and password not in listing


@pytest.mark.parametrize(
    ("argv", "stdin", "expected"),
    [
        (
            ["user", "add", "--username", "x", "--role", "boss", "--password-stdin"],
            "password-1\n",
            "unknown role",
        ),
        (["user", "add", "--username", "x", "--role", "cs", "--password-stdin"], "short\n", "8"),
        (["user", "add", "--username", "x", "--role", "cs"], "", "--password-stdin"),
        (["user", "add", "--username", " ", "--role", "cs", "--password-stdin"], "password-1\n", "아이디"),
        (["import", "orders", "/no/such/file.csv"], "", "no such file"),
        (["seed", "--demo", "--now", "yesterday-ish"], "", "ISO-8601"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    db_url: str, capsys: pytest.CaptureFixture[str], argv: list[str], stdin: str, expected: str
) -> None:
    assert run(argv, stdin) == 2
    assert expected in _one_error_line(capsys.readouterr().err)


def test_duplicate_user_is_refused_and_the_first_is_kept(
    db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["user", "add", "--username", "kim", "--role", "owner", "--password-stdin"]
    assert run(base, "first-password\n") == 0
    assert run(base, "second-password\n") == 2
    assert "kim" in _one_error_line(capsys.readouterr().err)
    engine = make_engine(db_url)
    assert authenticate(engine, "kim", "first-password").role.value == "owner"
    engine.dispose()


@pytest.mark.parametrize("url", ["mysql://root@localhost/shop", "not a url", "sqlite+nope:///x.db"])
def test_malformed_database_url(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], url: str
) -> None:
    monkeypatch.setenv("DATABASE_URL", url)
    assert run(["init"]) == 2
    assert "DATABASE_URL" in _one_error_line(capsys.readouterr().err) or url.startswith("sqlite+nope")


def test_database_url_flag_overrides_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", "mysql://wrong")
    assert run(["--database-url", f"sqlite:///{tmp_path / 'flag.db'}", "init"]) == 0
    assert (tmp_path / "flag.db").exists()


def test_unwritable_database_keeps_what_is_stored(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(SMALL_SEED) == 0
    database = tmp_path / "cli.db"
    before = _count(db_url, Customer)
    real_access = os.access
    # Tests run as root, which ignores file modes: simulate a read-only file the way the store checks it.
    monkeypatch.setattr(
        "core.db.os.access", lambda p, mode: False if Path(p) == database else real_access(p, mode)
    )
    capsys.readouterr()
    assert run(["seed", "--demo", "--reset", "--quiet"]) == 2
    assert "not writable" in _one_error_line(capsys.readouterr().err)
    monkeypatch.undo()
    assert _count(db_url, Customer) == before


def test_database_folder_that_cannot_exist(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    assert run(["--database-url", f"sqlite:///{blocker / 'db' / 'x.db'}", "init"]) == 2
    assert "cannot create" in _one_error_line(capsys.readouterr().err)


def test_import_orders_all_or_nothing_and_no_duplicates(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sample = Path(__file__).resolve().parent.parent / "data" / "orders_sample.csv"
    assert run(["--database-url", db_url, "import", "orders", str(sample)]) == 0
    first = capsys.readouterr().out
    assert "새 주문" in first and "새 주문 0건" not in first
    assert run(["--database-url", db_url, "import", "orders", str(sample)]) == 0
    assert "새 주문 0건" in capsys.readouterr().out  # re-importing the same file adds nothing

    bad = tmp_path / "bad.csv"
    bad.write_text("order_number,amount\nA-1,-5\n", encoding="utf-8")
    assert run(["--database-url", db_url, "import", "orders", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("오류 (error): 가져오기 실패") and "행:" in err  # row-numbered details follow
    assert "Traceback" not in err
    assert run(["--database-url", db_url, "import", "orders", str(tmp_path / "missing.csv")]) == 2


def test_seed_and_users_on_postgres(pg_engine: Engine, capsys: pytest.CaptureFixture[str]) -> None:
    url = pg_engine.url.render_as_string(hide_password=False)
    assert run(["--database-url", url, *SMALL_SEED]) == 0
    assert run(["--database-url", url, *SMALL_SEED]) == 2
    assert (
        run(
            [
                "--database-url",
                url,
                "user",
                "add",
                "--username",
                "pg-owner",
                "--role",
                "owner",
                "--password-stdin",
            ],
            "pg-password-1\n",
        )
        == 0
    )
    with Session(pg_engine) as session:
        assert session.execute(select(func.count()).select_from(Customer)).scalar_one() == 60
        assert authenticate(pg_engine, "pg-owner", "pg-password-1").role.value == "owner"


def test_runs_as_a_module(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'module.db'}",
        "PYTHONPATH": str(PROJECT_ROOT),
    }
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "core.cli",
            "user",
            "add",
            "--username",
            "a",
            "--role",
            "x",
            "--password-stdin",
        ],
        input="password-1\n",
        capture_output=True,
        text=True,
        env=env,
        cwd=PROJECT_ROOT,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.strip().startswith("오류 (error):") and len(done.stderr.strip().splitlines()) == 1
    help_text = subprocess.run(
        [sys.executable, "-m", "core.cli", "--help"],
        capture_output=True,
        text=True,
        env=env,
        cwd=PROJECT_ROOT,
        timeout=60,
    )
    assert help_text.returncode == 0 and "seed" in help_text.stdout and "데이터베이스" in help_text.stdout
