"""Bounces and complaints that arrive after the SMTP conversation.

verp      the per-message envelope sender (bounces+TOKEN@domain) and reading it back
parse     a report's bytes -> what it says (hard, soft, complaint, auto-reply, nothing)
policy    applying stored reports to the ledger and the subscribers, once each
inbound   the embedded SMTP receiver (INBOUND_PORT) and the `publisher inbound` service
imap      polling a bounce mailbox (IMAP_URL)
webhooks  provider events (Mailgun, Amazon SES through SNS), signatures checked
"""
