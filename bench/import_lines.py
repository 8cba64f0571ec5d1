"""Line-level order import benchmark (issue 19): 100,000 lines in a 스마트스토어-style layout.

    .venv/bin/python bench/import_lines.py                      # SQLite in a temp folder
    .venv/bin/python bench/import_lines.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/DB
                                                                # also PostgreSQL (its schema is DROPPED)
    .venv/bin/python bench/import_lines.py --xlsx               # also: the same file as XLSX, read by
                                                                # python-calamine and by openpyxl (read-only)

The file: ~35,000 orders of 1-6 lines (100,000 lines), 1,500 products by code, 12,000 customers,
two years of dates; 4% of orders carry a coupon line, 3% a returned line, 3% a partial refund,
2% a separate later cancellation row, 1% canceled before payment. Goals: import < 30 s SQLite,
< 15 s PostgreSQL, re-import (all skipped) < 3 s, peak RSS < 300 MB. The import's time includes
its 매출 rollup step (the first build on a fresh store), printed apart as well.

Each import runs in a child process (`--child`), so its peak RSS (VmHWM) is the import's own:
the interpreter, the file bytes, the parsed lines and the writes.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

HEADER = ["상품주문번호", "주문번호", "주문일시", "결제일", "구매자명", "구매자연락처", "주문상태", "판매채널", "상품번호",
          "상품명", "옵션정보", "수량", "상품가격", "최종 상품별 총 주문금액", "결제수단", "환불금액", "환불일시",
          "원주문번호", "수취인명", "배송비 합계"]
SURNAMES = "김이박최정강조윤장임한오서신권황안송류전홍"
GIVEN = ["민지", "서준", "하은", "도윤", "수아", "지우", "예준", "서연", "시우", "지민", "하준", "채원"]
WORDS = ["수분", "비타민", "클렌징", "선", "핸드", "바디", "립", "아이", "토너", "세럼", "크림", "앰플", "마스크", "폼"]


def make_file(lines: int = 100_000, seed: int = 19) -> bytes:
    rng = random.Random(seed)
    products = [(f"P{10000 + i}", f"{rng.choice(WORDS)}{rng.choice(WORDS)} {i}호 {rng.choice(['50ml', '100ml', '세트'])}",
                 rng.randrange(50, 900) * 100) for i in range(1_500)]
    customers = [(f"{rng.choice(SURNAMES)}{rng.choice(GIVEN)}", f"010-{2000 + i // 10:04d}-{rng.randrange(10000):04d}")
                 for i in range(12_000)]
    start = datetime(2024, 12, 1, 9, 0)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(HEADER)
    written = order_no = 0
    later: list[list[str]] = []
    while written < lines:
        order_no += 1
        number = f"2025{order_no:08d}"
        at = start + timedelta(minutes=rng.randrange(0, 2 * 365 * 24 * 60))
        stamp = at.strftime("%Y-%m-%d %H:%M:%S")
        name, phone = rng.choice(customers)
        method = rng.choice(["신용카드", "카카오페이"])
        count = min(rng.choice([1, 1, 2, 2, 3, 3, 4, 5, 6]), lines - written)
        canceled = rng.random() < 0.01
        total = 0
        touched = canceled
        for k in range(count):
            code, title, price = rng.choice(products)
            quantity = rng.choice([1, 1, 1, 2, 3])
            amount = price * quantity
            total += amount
            status, refund, refund_at = "구매확정", "", ""
            roll = rng.random()
            if canceled:
                status = "취소완료"
            elif roll < 0.03:
                status, refund_at = "반품완료", (at + timedelta(days=3)).strftime("%Y-%m-%d %H:%M:%S")
                touched = True
            elif roll < 0.06 and amount > 1000:
                status, refund = "부분환불", str(amount // 2)
                refund_at = (at + timedelta(days=2)).strftime("%Y-%m-%d %H:%M:%S")
                touched = True
            writer.writerow([f"{number}{k:02d}", number, stamp, stamp, name, phone, status, "스마트스토어", code, title, "",
                             quantity, price, amount, method, refund, refund_at, "", name, 0])
            written += 1
        if not canceled and written < lines and rng.random() < 0.04:
            off = total // 10
            writer.writerow([f"{number}99", number, stamp, stamp, name, phone, "", "스마트스토어", "", "쿠폰 할인", "",
                             1, -off, -off, method, "", "", "", name, 0])
            written += 1
        if not touched and total > 1000 and rng.random() < 0.02:
            later.append([f"C{number}", "", "", "", name, phone, "취소완료", "스마트스토어", "", "", "", "", "", "", method,
                          "1000", (at + timedelta(days=5)).strftime("%Y-%m-%d %H:%M:%S"), number, name, 0])
    for row in later:
        writer.writerow(row)
    return out.getvalue().encode("utf-8-sig")


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM). Not ru_maxrss: Linux carries that over exec
    from the parent, which held the generated file."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def server_cpu() -> float:
    """CPU seconds used so far by every `postgres` process on this machine (the server's side of
    the import; other clients of the same server count too: measure on a quiet machine)."""
    ticks = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)
        except OSError:
            continue
        if fields[0].endswith("(postgres"):
            parts = fields[1].split()
            ticks += int(parts[11]) + int(parts[12])  # utime, stime (fields 14 and 15)
    return ticks / os.sysconf("SC_CLK_TCK")


def child(path: Path, url: str) -> None:
    """One import and one re-import of `path` into `url`; prints JSON. The import includes its
    rollup step (run_import ends with core.analytics.catch_up); that step is also timed alone by
    wrapping catch_up, so the figures say import (transaction + ANALYZE) and rollup apart."""
    from core import analytics
    from core.accounts.actor import Actor
    from core.db import make_engine
    from core.models import Role
    from core.payments.order_import import run_import

    owner = Actor(id=None, name="bench", role=Role.OWNER)
    engine = make_engine(url)
    figures = {}
    step: dict[str, float] = {}
    real_catch_up = analytics.catch_up

    def timed_catch_up(*args, **kwargs):  # type: ignore[no-untyped-def]
        wall, cpu, server = time.perf_counter(), time.process_time(), server_cpu()
        try:
            return real_catch_up(*args, **kwargs)
        finally:
            step["wall"] = time.perf_counter() - wall
            step["cpu"] = time.process_time() - cpu
            step["server"] = server_cpu() - server

    analytics.catch_up = timed_catch_up  # run_import calls it through the package
    for label in ("import", "reimport"):
        data = path.read_bytes()
        step.clear()
        wall, cpu, server = time.perf_counter(), time.process_time(), server_cpu()
        result = run_import(engine, owner, data, source_name=path.name)
        total_wall, total_cpu = time.perf_counter() - wall, time.process_time() - cpu
        figures[label] = {
            "wall": round(total_wall, 2),
            "cpu": round(total_cpu, 2),
            "server": round(server_cpu() - server, 2),
            "rollup_server": round(step.get("server", 0.0), 2),
            "rollup_wall": round(step.get("wall", 0.0), 2),
            "rollup_cpu": round(step.get("cpu", 0.0), 2),
            "rolled_up": result.rolled_up,
            "chunks": result.rollup.get("chunks", 0),
            "rollup_failed": result.rollup_failed,
            "orders": result.created,
            "lines": result.lines,
            "skipped": result.skipped_existing,
            "refunds": result.refunds_created,
            "refunds_skipped": result.refunds_skipped,
            "products": len(result.products_created),
            "customers": result.customers_created,
        }
        del data
    figures["peak_rss_mb"] = peak_rss_mb()
    print(json.dumps(figures))


def fresh(url: str | None, folder: Path, name: str) -> str:
    from sqlalchemy import text

    from core.db import make_engine, upgrade

    url = url or f"sqlite:///{folder / name}.db"
    engine = make_engine(url)
    if engine.dialect.name == "postgresql":
        with engine.begin() as connection:
            connection.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            connection.execute(text("CREATE SCHEMA public"))
    upgrade(engine)
    engine.dispose()
    return url


def run_child(path: Path, url: str) -> dict:
    done = subprocess.run([sys.executable, __file__, "--child", str(path), url], capture_output=True, text=True,
                          check=False)
    if done.returncode:
        raise SystemExit(done.stderr[-3000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def xlsx_readers(csv_bytes: bytes, folder: Path) -> Path:
    import openpyxl

    from core.payments import import_source

    workbook = openpyxl.Workbook(write_only=True)
    sheet = workbook.create_sheet()
    for i, row in enumerate(csv.reader(io.StringIO(csv_bytes.decode("utf-8-sig")))):
        if i:
            row = [int(c) if c.lstrip("-").isdigit() and len(c) < 10 else c for c in row]
            row[2] = datetime.fromisoformat(row[2]) if row[2] else None
        sheet.append(row)
    path = folder / "lines.xlsx"
    workbook.save(path)
    data = path.read_bytes()
    for label, rows in (("python-calamine", lambda: import_source.open_table(data).rows),
                        ("openpyxl read-only", lambda: import_source.openpyxl_rows(data))):
        wall, cpu = time.perf_counter(), time.process_time()
        count = sum(1 for _ in rows())
        print(f"XLSX read, {label}: {count:,} rows in {time.perf_counter() - wall:.2f} s wall, "
              f"{time.process_time() - cpu:.2f} s CPU")
    print(f"XLSX file: {len(data) / 1024 / 1024:.1f} MB")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL"))
    parser.add_argument("--xlsx", action="store_true")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(Path(args.child[0]), args.child[1])
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        data = make_file(args.lines)
        path = folder / "lines.csv"
        path.write_bytes(data)
        print(f"file: {args.lines:,} lines, {len(data) / 1024 / 1024:.1f} MB; load {os.getloadavg()[0]:.1f}")
        targets = [("SQLite", fresh(None, folder, "bench"), path)]
        if args.database_url:
            targets.append(("PostgreSQL", fresh(args.database_url, folder, "pg"), path))
        if args.xlsx:
            targets.append(("SQLite, XLSX", fresh(None, folder, "xlsx"), xlsx_readers(data, folder)))
        for backend, url, source in targets:
            figures = run_child(source, url)
            first, again = figures["import"], figures["reimport"]
            server = (f"; PostgreSQL server CPU: import {first['server'] - first['rollup_server']:.2f} s, "
                      f"rollup {first['rollup_server']} s, re-import {again['server']} s"
                      if backend == "PostgreSQL" else "")
            print(f"{backend}: import incl. rollup {first['wall']} s wall / {first['cpu']} s CPU "
                  f"= import {first['wall'] - first['rollup_wall']:.2f} s wall / "
                  f"{first['cpu'] - first['rollup_cpu']:.2f} s CPU "
                  f"({first['orders']:,} orders, {first['lines']:,} lines, {first['refunds']:,} refunds, "
                  f"{first['products']:,} products, {first['customers']:,} customers) "
                  f"+ rollup {first['rollup_wall']} s wall / {first['rollup_cpu']} s CPU "
                  f"({first['rolled_up']:,} orders in {first['chunks']} chunks"
                  f"{', FAILED: ' + first['rollup_failed'] if first['rollup_failed'] else ''}); "
                  f"re-import {again['wall']} s wall / {again['cpu']} s CPU ({again['skipped']:,} skipped, "
                  f"{again['refunds_skipped']:,} refunds skipped, rollup {again['rollup_cpu']} s CPU); "
                  f"peak RSS {figures['peak_rss_mb']} MB{server}; load {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
