"""Reviews (issue 20, seed 004): one per order item behind a token link, answered, hidden, shown."""
