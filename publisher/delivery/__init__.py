"""Delivery: the ledger of (digest, subscriber) rows and the SMTP side that empties it.

    smtp_url   SMTP_URL parsed into an SmtpTarget
    outcome    what an SMTP reply means: sent, deferred, failed, unknown
    smtp       connections and the pool; one transaction's outcome per recipient
    ratelimit  SMTP_RATE as a token bucket shared by the sending threads
    ledger     store functions: enqueue, claim_batch, record, release, renew
    journal    each sender's record of final dots and replies, read by recovery after a kill
    recovery   after a crash: dead workers' rows settled by their journal, else unknown; counts
    store      the ledger functions bound to an engine and a worker id (the engine's Store)
    policy     retry times, the 3-day give-up, bounces
    inflight   the hand-off between the coordinator and the sending threads; run counters
    engine     the send loop
    embedded   the aiosmtpd server writing a Maildir when SMTP_URL is empty
    mailer     which SMTP server to use; single messages (confirmations)

The engine sees the store, the messenger and the transport only through Protocols declared in
engine.py (listmonk's manager style); nothing here renders messages or reads templates.
"""
