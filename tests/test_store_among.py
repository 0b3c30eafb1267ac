"""``among``: a digest-id filter written as ranges selects exactly the rows an IN list would."""

from __future__ import annotations

import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from publisher.store.deliveries import among

ROWS = range(1, 400)


@settings(max_examples=150, deadline=None)
@given(st.sets(st.integers(min_value=-5, max_value=420), max_size=300))
def test_ranges_select_exactly_the_ids(ids: set[int]) -> None:
    engine = sa.create_engine("sqlite://")
    table = sa.Table("t", sa.MetaData(), sa.Column("x", sa.Integer, primary_key=True))
    with engine.begin() as conn:
        table.create(conn)
        conn.execute(table.insert(), [{"x": x} for x in ROWS])
        where = among(table.c.x, ids)
        found = {x for (x,) in conn.execute(sa.select(table.c.x).where(where))}
    assert found == ids & set(ROWS)


def test_consecutive_ids_bind_two_numbers_not_ten_thousand() -> None:
    where = among(sa.column("digest_id"), [*range(1, 10_001), 20_000, 20_002])
    compiled = where.compile(compile_kwargs={"render_postcompile": True})
    assert len(compiled.params) <= 4
    assert "BETWEEN" in str(compiled)
