"""Money is integer KRW everywhere; these are the few rules about it."""

from __future__ import annotations


def format_krw(amount: int | None) -> str:
    """39000 -> '39,000원' (the way Korean shops write amounts)."""
    if amount is None:
        return "-"
    return f"{int(amount):,}원"


def vat_of(total: int, tax_free: int = 0) -> int:
    """VAT inside a VAT-inclusive total, as KakaoPay computes it: (total - tax_free) / 11, rounded half up."""
    if total < 0 or tax_free < 0 or tax_free > total:
        raise ValueError("tax_free must be between 0 and total")
    taxable = total - tax_free
    return (taxable + 5) // 11
