"""The weekly edition schedule and what its jobs do (the APScheduler wiring is ``service.jobs``).

times   pure functions: a time zone's fire times and the week each fire labels (DST-safe)
tasks   what each job does, given a Runtime (fire a zone's editions, rebuild feeds, purge signups)
leader  exactly one active scheduler: a PostgreSQL advisory lock, or a file lock on SQLite
"""
