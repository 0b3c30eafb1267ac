"""Property-based run of the admin API from its own OpenAPI schema: no input gives a 5xx.

In-process (ASGI), with the bearer token, on a SQLite file; a bounded number of examples per
operation keeps the whole run well under a minute.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import APIOperation, Case, GenerationMode

from publisher.pipeline.send import SendReport
from publisher.runtime import Runtime
from publisher.settings import Settings
from tests.conftest import FixedClockRuntime
from tests.web_support import AUTH, Web, make_web, seed

EXAMPLES = 30


@pytest.fixture
def api_web(make_settings: Callable[..., Settings]) -> Iterator[Web]:
    rt: Runtime = FixedClockRuntime(make_settings())
    rt.migrate()
    seed(rt)
    try:
        for env in make_web(rt):
            # "send now" runs the real pipeline elsewhere (test_web_api); here only its answer.
            env.state.send_digests = lambda *args, **kwargs: SendReport(digests=[])
            yield env
    finally:
        rt.close()


def operations(web: Web) -> list[APIOperation]:
    loaded = schemathesis.openapi.from_asgi("/openapi.json", web.app)
    return [result.ok() for result in loaded.get_all_operations()]


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_admin_api_never_answers_5xx(api_web: Web, mode: GenerationMode) -> None:
    ops = operations(api_web)
    assert len(ops) >= 10
    for operation in ops:

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def run(case: Case) -> None:
            response = case.call(headers=AUTH)
            assert response.status_code < 500, (case.method, case.path, response.text[:300])
            if mode is GenerationMode.POSITIVE:
                assert response.status_code != 401, (case.method, case.path)

        run()
