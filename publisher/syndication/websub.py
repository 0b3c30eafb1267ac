"""WebSub (W3C): tell the hub which feed URLs changed so subscribers get them pushed at once.

Feeds advertise the hub with rel="hub" next to rel="self" (the topic); after a build, the URLs of
the files whose bytes changed are sent to the hub as a publish ping (hub.mode=publish, hub.url
repeated, as Google's and Superfeedr's hubs accept). The hub is the operator's own setting, so
it may be on a private address; a hub that fails is logged and never fails the build.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from urllib.parse import urlencode

import httpx

log = logging.getLogger(__name__)

FEED_SUFFIXES = (".rss", ".atom", ".json")
BATCH = 100
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def changed_topics(base_url: str, changed_files: Iterable[str]) -> list[str]:
    """The public URLs of the changed feed files (index.opml is not a feed)."""
    return [f"{base_url}/feeds/{name}" for name in changed_files if name.endswith(FEED_SUFFIXES)]


def notify_hub(hub_url: str, topics: Sequence[str], *, timeout: float = 10.0) -> int:
    """POST publish pings for ``topics`` in batches; returns how many the hub accepted (2xx)."""
    accepted = 0
    for i in range(0, len(topics), BATCH):
        part = topics[i : i + BATCH]
        form = [("hub.mode", "publish"), *(("hub.url", url) for url in part)]
        try:
            resp = httpx.post(
                hub_url, content=urlencode(form), headers=FORM, timeout=timeout, trust_env=False
            )
        except httpx.HTTPError as e:
            log.warning("websub: hub %s unreachable: %s", hub_url, e)
            continue
        if resp.is_success:
            accepted += len(part)
        else:
            log.warning("websub: hub %s answered %s", hub_url, resp.status_code)
    return accepted
