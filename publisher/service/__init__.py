"""Running publisher unattended: delivery workers, the scheduler process and its jobs, metrics.

jobs       APScheduler 3 wiring: the job store in the database, the jobs, keeping them in sync
metrics    the Prometheus registry of one process, and the ledger read at scrape time
worker     `publisher worker`: claim ledger rows in batches and send them until stopped
scheduler  `publisher scheduler`: wait to be the leader, then run the jobs; serve's hook
"""
