"""The deterministic demo shop (`python -m core.cli seed --demo`): every demo payment, refund and
subscription instrument also exists in the sandbox gateway's own tables, so every action works.

    seed.py           seed_demo / describe: refusal, reset, one transaction around the generator
    generator.py      ids, products, customers; mixes in the parts below
    orders.py         one-off orders with items, payments, refunds, links and reviews; unpaid links
    subscriptions.py  subscriptions, charges, dunning and notices (mixed into the generator)
    inquiries.py      open and resolved inquiries, the one open 이중 결제 (mixed into the generator)
    writer.py         row shapes per driver, the bulk write paths (executemany / COPY), index drop/rebuild
    catalog.py        what the shop is: products, plans, names, inquiry texts, replies, reviews
"""
