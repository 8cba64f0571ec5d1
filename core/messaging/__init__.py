"""Everything the shop says to its customers: outbox, templates, compliance gate, providers."""
