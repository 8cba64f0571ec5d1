"""매출 (owner): the Power Trio (conversion, AOV, LTV), revenue, products, cohorts, MRR and churn."""

from ui import sales_view

sales_view.render()
