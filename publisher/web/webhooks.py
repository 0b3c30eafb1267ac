"""POST /webhooks/{provider}: bounce and complaint events from Mailgun and Amazon SES (SNS).

The request is verified (signature, topic, certificate host) before anything is kept, stored
and committed before the 200 goes back, then applied; a provider whose event we could not
store gets a 503 and sends it again. Every refusal gets the same short answer.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from publisher.bounces import policy, webhooks
from publisher.logs import event
from publisher.runtime import Runtime
from publisher.service.bounce_metrics import count_report
from publisher.store.bounces import report_key, store_report
from publisher.web.deps import WebState

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)
_CERTS = webhooks.CertCache()


def _handle(rt: Runtime, provider: str, body: bytes, fetch: webhooks.CertFetcher) -> JSONResponse:
    settings, now = rt.settings, rt.now()
    try:
        if provider == "mailgun":
            verified = webhooks.verify_mailgun(body, key=settings.mailgun_signing_key, now=now)
        else:
            verified = webhooks.verify_sns(body, settings=settings, fetch_cert=fetch, now=now)
    except webhooks.WebhookRefused as e:
        event(log, "webhooks.refused", level=logging.WARNING, provider=provider, reason=str(e))
        return JSONResponse({"detail": "refused"}, status_code=403)
    if verified.subscribe_url:
        event(log, "webhooks.sns_subscription", level=logging.WARNING, url=verified.subscribe_url,
              hint="open this URL once to confirm the SNS subscription")  # fmt: skip
        return JSONResponse({"status": "noted"})
    try:
        with rt.session() as session:
            report_id, new = store_report(
                session, key=report_key(verified.event_id), source=f"webhook:{provider}",
                raw=body, envelope_to="", now=now,
            )  # fmt: skip
    except Exception:
        log.exception("could not store a %s webhook event", provider)
        return JSONResponse({"detail": "try again later"}, status_code=503)
    if new:
        try:
            with rt.session() as session:
                outcome = policy.apply_report(
                    session, report_id=report_id, settings=settings,
                    verp=policy.verp_of(settings), now=now,
                )  # fmt: skip
        except Exception:  # stored: the applier's next sweep takes it
            log.exception("webhook report %s stays pending", report_id)
        else:
            if outcome is not None:
                count_report(rt, state=outcome.state, kind=outcome.kind)
    return JSONResponse({"status": "stored"})


@router.post("/webhooks/{provider}")
async def receive(provider: str, request: Request) -> JSONResponse:
    """One provider event: verified, stored, then applied."""
    if provider not in webhooks.PROVIDERS:
        return JSONResponse({"detail": "no such provider"}, status_code=404)
    state: WebState = request.app.state.web
    fetch = getattr(request.app.state, "sns_cert_fetcher", None) or _CERTS
    body = await request.body()
    return await run_in_threadpool(_handle, state.runtime, provider, body, fetch)
