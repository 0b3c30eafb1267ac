"""The weekly digest schedule and the jobs around it.

times   pure functions: a region's fire times and the week each fire digests (DST-safe)
tasks   what each job does, given a Runtime (queue a digest, rebuild feeds, purge signups)
jobs    APScheduler 3 wiring: the job store in the database, the jobs, and keeping them in sync
leader  exactly one active scheduler: a PostgreSQL advisory lock, or a file lock on SQLite
"""
