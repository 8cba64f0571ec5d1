"""Reviews (issue 20): the public review page on a 1M-order store, the showcase with 10,000 reviews,
and the 리뷰 screen's reads (답변 대기 count with its overdue cutoff, the list) on the same store.

    cp /work/stores/1m.db /tmp/reviews1m.db        # never the original: this script writes to its store
    .venv/bin/python bench/reviews.py --path /tmp/reviews1m.db [--runs 50]

The store is migrated first (the figure of migration 0005 on it is printed). Then, once per store:
review links for the newest paid order (as the review request makes them) and 10,000 answered,
visible reviews of one new product. Each page is requested through server.py's routes in process
(Starlette TestClient), so the CPU figure per request is the server's work plus the in-process
client's (an upper bound of the server time). Goal: < 300 ms each.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time
from datetime import timedelta
from typing import Any

from sqlalchemy import Engine, insert
from sqlmodel import col, select


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))]


def _migrate(engine: Engine) -> dict[str, float]:
    from core.db import upgrade

    cpu, wall = time.process_time(), time.perf_counter()
    upgrade(engine)
    return {"cpu_s": time.process_time() - cpu, "wall_s": time.perf_counter() - wall}


def _prepare(engine: Engine) -> tuple[str, int]:
    """(a review link of the newest paid order, the product with 10,000 answered reviews)."""
    from core import clock
    from core.db import session_scope
    from core.models import Order, OrderItem, Product, Review
    from core.reviews import service

    now = clock.now()
    with session_scope(engine) as session:
        order = session.exec(
            select(Order)
            .where(Order.status == "paid", col(Order.paid_at).is_not(None))
            .order_by(col(Order.paid_at).desc())
            .limit(1)
        ).one()
        token = service.issue_links(session, [order], now)
        assert token, "the newest paid order has no item"
        product = session.exec(select(Product).where(Product.name == "벤치 후기 상품")).first()
        if product is None:
            product = Product(name="벤치 후기 상품", price=10_000)
            session.add(product)
            session.flush()
            orders = session.exec(
                select(Order.id, Order.customer_id).order_by(col(Order.id).desc()).limit(10_000)
            ).all()
            rng = random.Random(20)
            rows: list[dict[str, Any]] = []
            for n, (oid, cid) in enumerate(orders):
                at = now - timedelta(minutes=n * 7)
                rows.append({
                    "order_id": oid, "customer_id": cid, "product_id": product.id, "order_item_id": None,
                    "rating": rng.choice((3, 4, 4, 5, 5, 5)), "body": f"벤치 후기 {n} " + "맛있어요. " * rng.randint(1, 20),
                    "created_at": at, "submitted_at": at, "updated_at": at, "answer": "감사합니다!",
                    "answered_at": at + timedelta(hours=2), "hidden": False,
                })  # fmt: skip
            session.execute(insert(Review), rows)
        product_id = product.id
        assert session.exec(select(OrderItem.id).limit(1)).first() is not None
    return token, product_id  # type: ignore[return-value]


def _timed(client: Any, path: str, runs: int) -> dict[str, float]:
    cpu: list[float] = []
    wall: list[float] = []
    for _ in range(runs):
        c, w = time.process_time(), time.perf_counter()
        answer = client.get(path)
        cpu.append((time.process_time() - c) * 1000)
        wall.append((time.perf_counter() - w) * 1000)
        assert answer.status_code == 200, (path, answer.status_code)
    return {
        "cpu_median_ms": statistics.median(cpu),
        "cpu_p99_ms": _percentile(cpu, 0.99),
        "wall_median_ms": statistics.median(wall),
        "wall_p99_ms": _percentile(wall, 0.99),
    }


def _reads(engine: Engine, runs: int) -> dict[str, dict[str, float]]:
    from core import clock
    from core.db import read_scope
    from core.reviews import queries

    results: dict[str, dict[str, float]] = {}
    for name, call in (
        ("waiting_count", lambda s: queries.waiting(s, clock.now())),
        ("screen_list_500", lambda s: queries.listing(s, queries.ReviewFilter(), clock.now())),
    ):
        cpu: list[float] = []
        for _ in range(max(3, runs // 10)):
            c = time.process_time()
            with read_scope(engine) as session:
                call(session)
            cpu.append((time.process_time() - c) * 1000)
        results[name] = {"cpu_median_ms": statistics.median(cpu), "cpu_max_ms": max(cpu)}
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--path", required=True, help="a COPY of the 1M-order SQLite store (it is written to)"
    )
    parser.add_argument("--runs", type=int, default=50)
    args = parser.parse_args()
    if os.path.realpath(args.path).startswith("/work/stores/"):
        raise SystemExit("copy the store first: this script writes to it")
    url = f"sqlite:///{args.path}"
    os.environ["DATABASE_URL"] = url
    from starlette.applications import Starlette
    from starlette.testclient import TestClient

    from core.config import get_settings
    from core.db import make_engine

    get_settings.cache_clear()
    engine = make_engine(url)
    print("migration to head:", _migrate(engine))
    token, product_id = _prepare(engine)
    import server

    app = Starlette(routes=server.ROUTES)
    with TestClient(app, follow_redirects=False) as client:
        client.get(f"/review?t={token}")  # warm the templates and the connection pool
        figures = {
            "review_page_1m": _timed(client, f"/review?t={token}", args.runs),
            "showcase_10k_page_1": _timed(client, f"/reviews?product={product_id}", args.runs),
            "showcase_10k_last_page": _timed(client, f"/reviews?product={product_id}&page=1000", args.runs),
        }
    figures.update(_reads(engine, args.runs))
    with open("/proc/loadavg") as load:
        print("load:", load.read().strip())
    for name, values in figures.items():
        print(f"{name:24s}", "  ".join(f"{k}={v:.1f}" for k, v in values.items()))


if __name__ == "__main__":
    main()
