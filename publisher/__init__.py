"""publisher: regional news items, per-region feeds and weekly email digests."""

__version__ = "0.1.0"
