"""Payment gateways (Saleor's payment/gateways/ shape): one protocol and one error tree (base.py),
one answer classification and the unknown-outcome rule every money-moving call wears (http.py,
base.moves_money), the KakaoPay and Toss clients, the local sandbox, the failover router, and the
registry that builds them from settings.
"""
