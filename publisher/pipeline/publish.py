"""The one publishing path: assemble a region's digest for a week, record the run, queue recipients.

`digests send` (CLI and admin API) and the scheduler's weekly job both call ``publish_week``, so
every week that goes out has its ``digest_runs`` record, whoever started it. A region slug is
resolved once into a ``RegionTarget`` (slug, names, zone, schedule overrides) that travels down.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from publisher.digest.windows import region_timezone
from publisher.email.outgoing import DigestMail
from publisher.email.render import RenderedEmail
from publisher.models import Digest
from publisher.pipeline.digests import SKIPPED, assemble_digest, digest_mail, rendition
from publisher.runtime import Runtime
from publisher.store import schedule as runs
from publisher.store.deliveries import enqueue, refresh_statistics
from publisher.store.schedule import RegionSchedule
from publisher.store.subscribers import recipient_ids, recipient_locales

PAGE = 5_000
ANALYZE_AFTER = 1_000  # rows queued at once that make the planner's picture of the ledger stale
QUEUED, SKIPPED_WEEK, ALREADY_DONE, COUNTED = "queued", "skipped", "done", "counted"


@dataclass(frozen=True, slots=True)
class RegionTarget:
    """A region resolved once: its slug, names, time zone and digest schedule overrides."""

    slug: str
    name_en: str
    name_es: str
    zone: ZoneInfo
    schedule: RegionSchedule


def resolve_region(rt: Runtime, slug: str) -> RegionTarget:
    """The region ``slug`` names (UnknownRegionError if none), with its stored overrides."""
    slug = rt.tree.normalize(slug)
    node = rt.tree.get(slug)
    with rt.session() as session:
        schedule = runs.region_schedule(session, region=slug)
    return RegionTarget(
        slug, node.name_en, node.name_es, region_timezone(rt.settings, schedule.timezone), schedule
    )


@dataclass(slots=True)
class Published:
    """What publishing (region, week) did: queued, skipped (no items), done before, or counted."""

    region: str
    week: str
    status: str
    queued: int = 0
    digest: Digest | None = None
    mail: DigestMail | None = None

    @property
    def digest_id(self) -> int | None:
        return self.digest.id if self.digest is not None else None


def mail_of(
    rt: Runtime, digest: Digest, *, rendered: RenderedEmail | None = None,
    language: str | None = None,
) -> DigestMail:  # fmt: skip
    """The per-recipient message builder of a stored digest (in ``language``, default its own),
    signed with the Runtime's signer."""
    return digest_mail(
        digest, settings=rt.settings, tree=rt.tree, tokens=rt.tokens, rendered=rendered,
        language=language, clock=rt.now,
    )  # fmt: skip


def publish_week(
    rt: Runtime,
    region: RegionTarget,
    *,
    week: str,
    now: datetime,
    runner: str,
    fire: datetime | None = None,
    dry_run: bool = False,
    again: bool = True,
) -> Published:
    """Assemble ``region``'s digest of ``week``, record the run and queue its recipients.

    A run already finished for (region, week) is done: the scheduler (``again=False``) stops
    there, an operator's send (``again=True``) queues whoever joined since (idempotent). A dry
    run assembles and counts the recipients; it records and queues nothing.
    """
    started = None
    if not dry_run:
        with rt.session() as session:
            started = runs.start_run(
                session, region=region.slug, week=week, fire_time=fire or now, now=now,
                runner=runner,
            )  # fmt: skip
        if started is None and not again:
            return Published(region.slug, week, ALREADY_DONE)
    with rt.session() as session:
        digest = assemble_digest(
            session, region=region.slug, week=week, settings=rt.settings, tree=rt.tree, now=now,
            zone=region.zone,
        )  # fmt: skip
    if digest.status == SKIPPED or digest.id is None:
        result = Published(region.slug, week, SKIPPED_WEEK, 0, digest)
    elif dry_run:
        return Published(region.slug, week, COUNTED, count_recipients(rt, region.slug), digest)
    else:
        mail = mail_of(rt, digest)
        queued = queue_recipients(rt, digest, mail)
        result = Published(region.slug, week, QUEUED, queued, digest, mail)
    if started is None:
        return result  # a send again after the run finished: its record stays the first run's
    with rt.session() as session:
        runs.finish_run(
            session, region=region.slug, week=week, status=result.status, queued=result.queued,
            now=rt.now(),
        )  # fmt: skip
    return result


def queue_recipients(rt: Runtime, digest: Digest, mail: DigestMail | None) -> int:
    """Add a ledger row for every active subscriber of the digest's region, in keyset pages.

    Each row gets its reader's language (es-CL counts as es); the digest is rendered in each
    language the first time a reader of it turns up, and stored, so it is rendered once.
    """
    assert digest.id is not None
    settings = rt.settings
    added, after = 0, 0
    rendered: set[str] = {digest.locale}
    while True:
        with rt.session() as session:
            page = recipient_locales(session, region=digest.region, after_id=after, limit=PAGE)
            if not page:
                if added >= ANALYZE_AFTER:
                    refresh_statistics(session)
                return added
            groups: dict[str, list[int]] = {}
            for subscriber_id, tag in page:
                groups.setdefault(settings.pick_locale(tag), []).append(subscriber_id)
            for language, ids in sorted(groups.items()):
                if language not in rendered:
                    rendition(session, digest, language, settings=settings, tree=rt.tree)
                    rendered.add(language)
                added += enqueue(
                    session, digest_id=digest.id, subscriber_ids=ids,
                    message_id=mail.message_id if mail else None, locale=language,
                )  # fmt: skip
        after = page[-1][0]


def count_recipients(rt: Runtime, region: str) -> int:
    """How many active subscribers a digest of ``region`` goes to (dry runs)."""
    total, after = 0, 0
    while True:
        with rt.session() as session:
            page = recipient_ids(session, region=region, after_id=after, limit=PAGE)
        if not page:
            return total
        total, after = total + len(page), page[-1]
