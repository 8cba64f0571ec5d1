"""`python -m core.cli`: the operator's commands (운영자 명령).

    python -m core.cli init                                   데이터베이스 생성/업그레이드
    python -m core.cli seed --demo [--customers N --orders N --seed S --reset | --if-empty]
    python -m core.cli user add --username U --role owner|cs|staff [--name N] [--password-stdin]
    python -m core.cli user list
    python -m core.cli user passwd|disable|enable|unlock USERNAME [--password-stdin]
    python -m core.cli import orders FILE.csv|FILE.xlsx [--mapping NAME]

Every failure an operator can cause (unknown role, malformed DATABASE_URL, unwritable database file,
an already seeded database, ...) prints ONE line starting with "오류 (error):" and exits with code 2;
nothing stored is changed by a failed command (each command is one transaction).
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

from sqlalchemy import Engine, select
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from core import analytics, clock
from core.accounts import auth
from core.accounts.actor import Actor
from core.accounts.auth import create_user
from core.config import ConfigError, load_settings
from core.db import DatabaseError, make_engine, session_scope, upgrade
from core.errors import ChannelDeskError
from core.models import Role, StaffUser
from core.models.staff import ROLE_LABELS
from core.payments import import_mapping, import_source, order_import

EXIT_OK = 0
EXIT_BAD_INPUT = 2

CLI_ACTOR = Actor(id=None, name="cli", role=Role.OWNER)


class CliError(Exception):
    """An operator mistake: shown as one line, exit code 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m core.cli",
        description="ChannelDesk 운영자 명령 (operator commands). DATABASE_URL 로 데이터베이스를 고릅니다.",
    )
    parser.add_argument(
        "--database-url",
        metavar="URL",
        help="DATABASE_URL 대신 쓸 주소 (overrides DATABASE_URL), 예: sqlite:///data/channeldesk.db",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    commands.add_parser("init", help="데이터베이스 생성/업그레이드 (create or upgrade the database)")

    seed = commands.add_parser("seed", help="데모 데이터 만들기 (fill the database with demo data)")
    seed.add_argument("--demo", action="store_true", required=True, help="데모 데이터 (demo shop data)")
    seed.add_argument(
        "--customers", type=_positive_int, default=None, help="고객 수 (customers, default 2000)"
    )
    seed.add_argument(
        "--orders", type=_non_negative_int, default=None, help="주문 수 (orders, default 10000)"
    )
    seed.add_argument(
        "--seed", type=int, default=None, help="난수 시드: 같은 시드는 같은 데이터 (default 2026)"
    )
    mode = seed.add_mutually_exclusive_group()
    mode.add_argument(
        "--reset",
        action="store_true",
        help="기존 고객/주문 데이터를 지우고 다시 만들기; 직원 계정·설정·감사 로그는 유지 "
        "(delete shop data first; staff, settings, audit log stay)",
    )
    mode.add_argument(
        "--if-empty",
        action="store_true",
        help="데이터가 이미 있으면 건너뛰고 성공으로 끝내기 (skip quietly when data exists; for first start)",
    )
    seed.add_argument(
        "--now",
        default=None,
        metavar="ISO",
        help="기준 시각 (reference instant, e.g. 2026-11-23T10:00+09:00; default: now) — 같은 시드+시각 = 같은 데이터",
    )
    seed.add_argument("--quiet", action="store_true", help="진행 상황을 출력하지 않음 (no progress lines)")

    user = commands.add_parser("user", help="직원 계정 (staff users)")
    user_commands = user.add_subparsers(dest="user_command", metavar="ACTION", required=True)
    add = user_commands.add_parser("add", help="직원 추가 (add a staff user)")
    add.add_argument("--username", required=True, help="로그인 아이디 (login name)")
    add.add_argument("--role", required=True, help="역할 (role): owner | cs | staff")
    add.add_argument("--name", default=None, help="표시 이름 (display name; default: the username)")
    add.add_argument(
        "--password-stdin",
        action="store_true",
        help="비밀번호를 표준 입력 첫 줄에서 읽기 (read the password from stdin; otherwise prompt)",
    )
    user_commands.add_parser("list", help="직원 목록 (list staff users)")
    passwd = user_commands.add_parser("passwd", help="비밀번호 재설정; 그 사람의 모든 로그인 종료 (reset a password)")
    passwd.add_argument("username", help="로그인 아이디 (login name)")
    passwd.add_argument("--password-stdin", action="store_true",
                        help="비밀번호를 표준 입력 첫 줄에서 읽기 (read the password from stdin; otherwise prompt)")
    first = user_commands.add_parser(
        "first-owner",
        help="직원이 하나도 없을 때만 사장님 계정 만들기; 비밀번호는 OWNER_PASSWORD 또는 입력 (first start)")
    first.add_argument("--username", default="owner", help="로그인 아이디 (default: owner)")
    for name, text in (("disable", "계정 정지; 모든 로그인 즉시 종료 (deactivate; ends every session)"),
                       ("enable", "정지한 계정 다시 사용 (reactivate)"),
                       ("unlock", "틀린 로그인 횟수 초기화, 대기 시간 해제 (clear the login backoff)")):
        user_commands.add_parser(name, help=text).add_argument("username", help="로그인 아이디 (login name)")

    importer = commands.add_parser("import", help="외부 데이터 가져오기 (import data)")
    import_commands = importer.add_subparsers(dest="import_kind", metavar="KIND", required=True)
    orders = import_commands.add_parser("orders", help="주문 CSV 가져오기 (import orders from a CSV file)")
    orders.add_argument("file", type=Path, metavar="FILE.csv|FILE.xlsx")
    orders.add_argument("--mapping", metavar="NAME",
                        help="주문 화면에서 저장한 열 매핑 이름 (a saved column mapping; default: header names)")

    customers = commands.add_parser("customers", help="고객 (customers)")
    customer_commands = customers.add_subparsers(dest="customers_command", metavar="ACTION", required=True)
    customer_commands.add_parser(
        "merge", help="번호 다시 확인, 같은 휴대전화 번호의 고객 합치기 (re-identify numbers, merge duplicates)"
    )
    return parser


def _positive_int(text: str) -> int:
    value = _int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"1 이상이어야 합니다 (must be >= 1): {text}")
    return value


def _non_negative_int(text: str) -> int:
    value = _int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"0 이상이어야 합니다 (must be >= 0): {text}")
    return value


def _int(text: str) -> int:
    try:
        return int(text.replace(",", "").replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"정수가 아닙니다 (not an integer): {text!r}") from None


# ----------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None, *, stdin: TextIO | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)  # bad flags: argparse prints usage and exits 2
    try:
        return _dispatch(args, stdin or sys.stdin)
    except ChannelDeskError as exc:
        # A service's message may list details below its first line (e.g. CSV rows): show them all.
        first, *details = str(exc).strip().splitlines() or [exc.__class__.__name__]
        code = _fail(first)
        for line in details:
            print(f"  {line}", file=sys.stderr)
        return code
    except (CliError, ConfigError, DatabaseError) as exc:
        return _fail(str(exc))
    except OperationalError as exc:
        return _fail(f"데이터베이스 오류 (database error): {_first_line(exc.orig or exc)}")
    except SQLAlchemyError as exc:
        return _fail(f"데이터베이스 오류 (database error): {_first_line(exc)}")
    except KeyboardInterrupt:
        print("중단했습니다 (interrupted); 바뀐 것은 없습니다 (nothing was changed)", file=sys.stderr)
        return 130


def _fail(message: str) -> int:
    print(f"오류 (error): {_first_line(message)}", file=sys.stderr)
    return EXIT_BAD_INPUT


def _first_line(value: object) -> str:
    text = str(value).strip()
    return text.splitlines()[0] if text else value.__class__.__name__


def _engine(args: argparse.Namespace) -> Engine:
    environ = dict(os.environ)
    if args.database_url:
        environ["DATABASE_URL"] = args.database_url
    settings = load_settings(environ)
    return make_engine(settings.database_url)


def _dispatch(args: argparse.Namespace, stdin: TextIO) -> int:
    # Check the cheap things before asking for a password or touching the database.
    if args.command == "user" and args.user_command == "add" and args.role.strip().lower() not in set(Role):
        raise CliError(f"알 수 없는 역할입니다: {args.role!r} (owner, cs, staff 중 하나; unknown role)")
    if args.command == "import" and not args.file.is_file():
        raise CliError(f"파일이 없습니다 (no such file): {args.file}")
    engine = _engine(args)
    try:
        upgrade(engine)  # every command works on a fresh clone: create/upgrade first
        handler: Callable[[Engine, argparse.Namespace, TextIO], int] = {
            "init": _cmd_init,
            "seed": _cmd_seed,
            "user": _cmd_user,
            "import": _cmd_import,
            "customers": _cmd_customers,
        }[args.command]
        return handler(engine, args, stdin)
    finally:
        engine.dispose()


def _cmd_init(engine: Engine, _args: argparse.Namespace, _stdin: TextIO) -> int:
    print(f"데이터베이스 준비 완료 (database ready): {engine.url.render_as_string(hide_password=True)}")
    return EXIT_OK


def _cmd_seed(engine: Engine, args: argparse.Namespace, _stdin: TextIO) -> int:
    from core.demo import seed as seeding

    options: dict[str, Any] = {
        "customers": args.customers or seeding.DEFAULT_CUSTOMERS,
        "orders": seeding.DEFAULT_ORDERS if args.orders is None else args.orders,
        "seed": seeding.DEFAULT_SEED if args.seed is None else args.seed,
    }
    if args.if_empty:
        with engine.connect() as connection:  # the same test seed_demo uses to refuse
            if any(seeding.existing_counts(connection).values()):
                print("데이터가 이미 있어 데모 데이터를 건너뜁니다 (already has data; skipped)")
                return EXIT_OK

    def progress(message: str) -> None:
        if not args.quiet:
            print(f"  … {message}", file=sys.stderr)

    if args.now:
        try:
            options["now"] = clock.parse_instant(args.now)
        except ValueError:
            raise CliError(f"--now 시각을 읽을 수 없습니다 (not an ISO-8601 instant): {args.now!r}") from None
    started = clock.now()
    counts = seeding.seed_demo(engine, reset=args.reset, progress=progress, **options)
    seconds = (clock.now() - started).total_seconds()
    print(f"데모 데이터를 만들었습니다 (demo data created) in {seconds:.1f} s, seed {options['seed']}:")
    print(seeding.describe(counts))
    # The seeded history rolled up now, as after an import: the 매출 page reads rollups from the
    # first login instead of the whole history live until the worker's first run.
    progress("매출 집계 (sales rollup)")
    rolled = analytics.catch_up(engine, clock.now())
    _say_rollup(rolled.counts, rolled.failed)
    print(
        "데모 로그인 (demo logins): "
        + ", ".join(f"{name} / {seeding.DEMO_PASSWORD}" for name, _label, _role in seeding.DEMO_USERS)
        + (
            " (이미 있던 계정은 그대로 / existing accounts unchanged)"
            if counts["staff_users_created"] < 3
            else ""
        )
    )
    return EXIT_OK


def _cmd_user(engine: Engine, args: argparse.Namespace, stdin: TextIO) -> int:
    if args.user_command == "list":
        with session_scope(engine) as session:
            users = session.execute(select(StaffUser).order_by(StaffUser.id)).scalars().all()
            if not users:
                print("직원 계정이 없습니다 (no staff users). python -m core.cli user add ... 로 추가하세요.")
                return EXIT_OK
            print(f"{'아이디':<16} {'역할':<12} {'이름':<20} {'상태':<6} 마지막 로그인")
            for user in users:
                role = Role(user.role)
                print(
                    f"{user.username:<16} {role.value + ' ' + ROLE_LABELS[role]:<12} {user.display_name:<20} "
                    f"{'사용' if user.is_active else '정지':<6} {clock.format_kst(user.last_login_at)}"
                )
        return EXIT_OK

    if args.user_command == "first-owner":
        return _cmd_first_owner(engine, args)
    if args.user_command in ("passwd", "disable", "enable", "unlock"):
        return _cmd_user_account(engine, args, stdin)
    password = _read_password(args.password_stdin, stdin)
    with session_scope(engine) as session:
        user = create_user(
            session,
            None,
            username=args.username,
            display_name=args.name or args.username.strip(),
            role=args.role,
            password=password,
        )
        summary = f"{user.username} ({user.role}, {user.display_name})"
    print(f"직원 계정을 만들었습니다 (user created): {summary}")
    return EXIT_OK


def _cmd_first_owner(engine: Engine, args: argparse.Namespace) -> int:
    """A store that is not a demo starts with no default password: the first owner's comes from
    OWNER_PASSWORD or a no-echo prompt, and only when there is no staff user at all."""
    with session_scope(engine) as session:
        if session.execute(select(StaffUser.id).limit(1)).first() is not None:
            print("직원 계정이 이미 있습니다 (staff users exist; nothing to do)")
            return EXIT_OK
    password = os.environ.get("OWNER_PASSWORD")
    if password is None:
        print("첫 사장님 계정을 만듭니다 (creating the first owner account).")
        password = _read_password(False, sys.stdin)
    elif len(password) < 8:
        raise CliError("OWNER_PASSWORD 는 8자 이상이어야 합니다 (must be at least 8 characters)")
    with session_scope(engine) as session:
        create_user(session, None, username=args.username, display_name="사장님", role="owner", password=password)
    print(f"사장님 계정을 만들었습니다 (owner created): {args.username.strip()}")
    return EXIT_OK


def _cmd_user_account(engine: Engine, args: argparse.Namespace, stdin: TextIO) -> int:
    """passwd / disable / enable / unlock one user by login name (trusted shell: audited as cli)."""
    username = args.username.strip()
    if args.user_command == "unlock":
        with session_scope(engine) as session:
            auth.unlock(session, None, username)
        print(f"로그인 대기 시간을 해제했습니다 (backoff cleared): {username}")
        return EXIT_OK
    with session_scope(engine) as session:
        found = session.execute(select(StaffUser.id).where(StaffUser.username == username)).scalar_one_or_none()
    if found is None:
        raise CliError(f"없는 아이디입니다 (no such user): {username}")
    if args.user_command == "passwd":
        password = _read_password(args.password_stdin, stdin)
        with session_scope(engine) as session:
            auth.reset_password(session, None, found, password)
        print(f"비밀번호를 바꿨습니다. 그 계정의 모든 로그인이 끝났습니다 (password reset): {username}")
        return EXIT_OK
    active = args.user_command == "enable"
    with session_scope(engine) as session:
        auth.set_active(session, None, found, active)
    print(f"계정을 {'다시 사용합니다' if active else '정지했습니다. 모든 로그인이 끝났습니다'} "
          f"(user {'enabled' if active else 'disabled'}): {username}")
    return EXIT_OK


def _read_password(from_stdin: bool, stdin: TextIO) -> str:
    """The password never appears in argv, output or logs: stdin or a no-echo prompt."""
    if from_stdin:
        line = stdin.readline()
        password = line[:-1] if line.endswith("\n") else line
        password = password[:-1] if password.endswith("\r") else password
    else:
        if not sys.stdin.isatty():
            raise CliError("비밀번호를 입력받을 터미널이 없습니다: --password-stdin 을 쓰세요 (no terminal)")
        password = getpass.getpass("비밀번호 (password, 8자 이상): ")
        if getpass.getpass("비밀번호 확인 (repeat): ") != password:
            raise CliError("두 비밀번호가 다릅니다 (passwords do not match)")
    if len(password) < 8:
        raise CliError("비밀번호는 8자 이상이어야 합니다 (password must be at least 8 characters)")
    return password


def _cmd_import(engine: Engine, args: argparse.Namespace, _stdin: TextIO) -> int:
    """All rows or none (row-numbered errors otherwise); order numbers already stored are skipped."""
    try:
        import_source.check_size(args.file.stat().st_size)  # before reading it into memory
    except import_source.SourceError as exc:
        raise CliError(str(exc)) from exc
    mapping = None
    if args.mapping:
        with session_scope(engine) as session:
            mapping = import_mapping.load(session, args.mapping)
    data = args.file.read_bytes()
    result = order_import.run_import(engine, CLI_ACTOR, data, source_name=args.file.name, mapping=mapping)
    print(
        f"주문을 가져왔습니다 (orders imported): 새 주문 {result.created:,}건 (상품 줄 {result.lines:,}개), "
        f"이미 있던 주문 {result.skipped_existing:,}건 건너뜀, 새 고객 {result.customers_created:,}명, "
        f"환불 {result.refunds_created:,}건 (이미 있던 환불 {result.refunds_skipped:,}건 건너뜀)"
    )
    _say_rollup(result.rollup, result.rollup_failed)
    if result.products_created:
        shown = ", ".join(result.products_created[:20])
        more = f" 외 {len(result.products_created) - 20:,}개" if len(result.products_created) > 20 else ""
        print(f"새 상품 {len(result.products_created):,}개 (products created): {shown}{more}")
    return EXIT_OK


def _say_rollup(counts: dict[str, int], failed: str | None) -> None:
    """The 매출 rollup step a bulk write ends with (core.analytics.catch_up), in one line."""
    if failed:
        print(f"매출 집계는 작업기가 마칩니다 (sales rollup left to the worker): {failed}")
    elif counts:
        print(
            f"매출 집계 완료 (sales rollup): 주문 {counts.get('orders', 0):,}건, "
            f"{counts.get('chunks', 0):,}번에 나눠 저장 ({'처음부터' if counts.get('rebuilt') else '이어서'})"
        )


def _cmd_customers(engine: Engine, _args: argparse.Namespace, _stdin: TextIO) -> int:
    """customers merge: the same merge as migration 0002, audited per merged number."""
    from core.customers import merge

    with session_scope(engine) as session:
        report = merge.merge_all(session, None)
    print(
        f"고객 번호를 확인했습니다 (customers checked): {report.checked:,}명, 번호 정리 {report.identified:,}명, "
        f"합친 번호 {report.numbers_merged:,}개 (합쳐진 고객 {report.rows_merged:,}명, 수신거부 {report.opted_out:,}개)"
    )
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
