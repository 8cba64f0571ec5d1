"""Payments: orders, refunds, payment links, order import, the reconciliation jobs, and the
gateways they talk to (gateways/).

    orders.py        orders and payments recorded, searched, refunded (the refund path)
    links.py         payment links: ready, approve, cancel/fail returns, dunning-link hooks
    order_import.py  CSV import, all or nothing, idempotent
    templates.py     the payment messages' templates
    jobs.py          reconciliation of unknown outcomes, link reminders (thin worker entry points)
    gateways/        base, http, kakaopay, toss, sandbox, router, registry
"""
