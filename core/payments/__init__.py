"""Payments: orders, refunds, payment links, order import, the reconciliation jobs, and the
gateways they talk to (gateways/).

    orders.py        orders and payments recorded, searched, refunded (the refund path)
    links.py         payment links: ready, approve, cancel/fail returns, dunning-link hooks
    order_import.py  order import (line level: orders with several items, products, discounts,
                     refunds), all or nothing, idempotent
    import_source.py reading an uploaded CSV (UTF-8/CP949) or XLSX row by row
    import_mapping.py column mappings: fields, suggestions from header names, saved mappings
    templates.py     the payment messages' templates
    jobs.py          reconciliation of unknown outcomes, link reminders (thin worker entry points)
    gateways/        base, http, kakaopay, toss, sandbox, router, registry
"""
