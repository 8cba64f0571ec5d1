"""Payments: orders, refunds, payment links, order import, the reconciliation jobs, and the
gateways they talk to (gateways/).

    orders.py        orders and payments recorded (one paid order written whole; the amount rule)
    refunds.py       the refund path: reserve, cancel at the gateway once, record; unknown outcomes
    queries.py       order search (whole phone numbers only) and one order's detail
    checkout.py      what the customer's /pay page shows (shop, items, total, refund policy)
    links.py         payment links, staff side: create, chat text, funnel; a link's state rules
    link_checkout.py a link's public life: open, ready, the sandbox page, cancel/fail returns
    link_approval.py approve once, the order recorded once, dunning-link hooks
    import_rows.py   an export read into orders (line level: several items, products, discounts,
                     refunds) and validated whole: the import's rules (docs/order-import.md), no database
    import_cells.py  one cell read as a value: won, KST time, phone, status word, product name
    order_import.py  writing what import_rows read: all or nothing, idempotent
    import_store.py  the import's bulk inserts (COPY / executemany) and set lookups of stored keys
    import_source.py reading an uploaded CSV (UTF-8/CP949) or XLSX row by row
    import_mapping.py column mappings: fields, suggestions from header names, saved mappings
    templates.py     the payment messages' templates
    jobs.py          reconciliation of unknown outcomes, link reminders (thin worker entry points)
    gateways/        base, http, kakaopay, toss, sandbox, router, registry
"""
