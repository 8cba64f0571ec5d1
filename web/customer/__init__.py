"""Customer pages: /pay (payment link checkout), /go (campaign link), /help (inquiry form)."""
