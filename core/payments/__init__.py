"""Payment gateways: one protocol, a local sandbox, KakaoPay and Toss clients, a failover router."""
