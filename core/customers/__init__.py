"""Customers: one row per person, and the per-customer figures segments and the 6-month rule read.

    summary.py  customer_summary kept current by every write path that records orders or payments
"""
