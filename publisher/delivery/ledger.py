"""The ledger's row shapes the send engine works with (the queries are in ``store.deliveries``)."""

from publisher.store.deliveries import Claim, Claimed, Recipient, RowUpdate, batched

__all__ = ["Claim", "Claimed", "Recipient", "RowUpdate", "batched"]
