"""The deterministic demo shop (`python -m core.cli seed --demo`): every demo payment, refund and
subscription instrument also exists in the sandbox gateway's own tables, so every action works.

    seed.py     seed_demo / describe and the generator
"""
