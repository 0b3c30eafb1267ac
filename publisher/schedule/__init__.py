"""The weekly digest schedule and what its jobs do (the APScheduler wiring is ``service.jobs``).

times   pure functions: a region's fire times and the week each fire digests (DST-safe)
tasks   what each job does, given a Runtime (queue a digest, rebuild feeds, purge signups)
leader  exactly one active scheduler: a PostgreSQL advisory lock, or a file lock on SQLite
"""
