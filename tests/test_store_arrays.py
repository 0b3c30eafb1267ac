"""Array parameters on PostgreSQL go as their text form, cast on the server: whatever the values
(quotes, backslashes, braces, commas, the word NULL, bidi controls), the server reads back
exactly the list given, and a lookup matches exactly the values given."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel.sql.sqltypes import AutoString

from publisher.models import UTCDateTime
from publisher.store.sql import array, array_literal, array_value

pytestmark = pytest.mark.postgres

HOSTILE = ['a"b', "back\\slash", "{brace}", "x,y", "NULL", "null", "", " lead", "tab\there",
           "line\r\nbreak", "\u202eevil\u202c", "ü€𝄞", '\\"', "}", "{"]  # fmt: skip
TEXT = st.text(
    st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), max_size=12
)


@pytest.fixture(scope="module")
def engine(pg_ok: bool) -> Iterator[sa.Engine]:
    if not pg_ok:
        pytest.skip("PostgreSQL not reachable")
    from tests.conftest import PG_ADMIN

    found = sa.create_engine(PG_ADMIN.replace("postgresql://", "postgresql+psycopg://"))
    yield found
    found.dispose()


def read_back(engine: sa.Engine, values: list[Any], of: sa.types.TypeEngine[Any]) -> Any:
    with engine.connect() as conn:
        return conn.execute(sa.select(array(values, of))).scalar_one()


def test_hostile_strings_come_back_as_given_and_go_as_text(engine: sa.Engine) -> None:
    assert array_literal(HOSTILE) is not None  # the fast path, not psycopg's list
    assert read_back(engine, HOSTILE, sa.Text()) == HOSTILE
    assert read_back(engine, [], sa.Text()) == []


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(values=st.lists(st.one_of(TEXT, st.sampled_from(HOSTILE)), max_size=20))
def test_any_list_of_strings_round_trips(engine: sa.Engine, values: list[str]) -> None:
    assert read_back(engine, values, sa.Text()) == values


@settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(values=st.lists(st.integers(-(2**63), 2**63 - 1), max_size=50))
def test_any_list_of_integers_round_trips(engine: sa.Engine, values: list[int]) -> None:
    assert array_literal(values) == "{" + ",".join(map(str, values)) + "}"
    assert read_back(engine, values, sa.BigInteger()) == values


def test_mixed_kinds_nulls_booleans_and_times(engine: sa.Engine) -> None:
    at = datetime(2026, 12, 2, 8, 30, 15, 123456, tzinfo=timezone(timedelta(hours=-6)))
    # bound as naive UTC, as the column type stores it, and read back as aware UTC
    back = read_back(engine, [at, None], UTCDateTime())
    assert back == [at, None] and back[0].tzinfo == UTC
    assert read_back(engine, [True, False, None], sa.Boolean()) == [True, False, None]
    assert read_back(engine, ["a", None, 'q"'], sa.Text()) == ["a", None, 'q"']
    assert array_value([1, 2]) == "{1,2}"
    # True in an integer array is 1; mixed with numbers it cannot be written for any other type
    assert array_literal([True, 1]) is None
    assert read_back(engine, [True, 2, None], sa.Integer()) == [1, 2, None]
    assert read_back(engine, [True, False], sa.Integer()) == [1, 0]
    # kinds it cannot write go to psycopg as lists, and still arrive
    assert array_literal([1.5]) is None and array_value([1.5]) == [1.5]
    assert read_back(engine, [1.5, 2.25], sa.Float()) == [1.5, 2.25]
    with pytest.raises((ValueError, sa.exc.StatementError), match="naive datetime"):
        read_back(engine, [datetime(2026, 1, 1)], UTCDateTime())  # naive: refused as before


def test_a_lookup_by_a_longer_value_does_not_match_a_stored_prefix(engine: sa.Engine) -> None:
    """A cast to VARCHAR(n)[] would cut the value given to n characters and match its prefix."""
    table = sa.Table("arrays_probe", sa.MetaData(), sa.Column("v", AutoString(8)),
                     prefixes=["TEMPORARY"])  # fmt: skip
    with engine.connect() as conn:
        table.create(conn)
        conn.execute(sa.insert(table), [{"v": "abcdefgh"}, {"v": "a,b"}])
        given = array(["abcdefghij", "a,b"], table.c.v.type)
        found = conn.execute(sa.select(table.c.v).where(table.c.v == sa.any_(given))).scalars()
        assert list(found) == ["a,b"]


def test_the_array_goes_untyped_and_is_not_cast_again_per_row(engine: sa.Engine) -> None:
    """A typed (VARCHAR) parameter cast to an array is parsed again for every row compared:
    a fire's lookup of 100,000 readers then took ten minutes. The plan must hold the array."""
    table = sa.Table("arrays_plan", sa.MetaData(), sa.Column("id", sa.Integer, index=True),
                     sa.Column("v", AutoString(8)), prefixes=["TEMPORARY"])  # fmt: skip
    stmt = sa.select(table.c.id).where(
        table.c.id == sa.any_(array(range(500), sa.Integer())),
        table.c.v == sa.any_(array(["a", "b"], table.c.v.type)),
    )
    compiled = stmt.compile(dialect=engine.dialect)
    assert "::VARCHAR" not in str(compiled) and "AS TEXT[]" in str(compiled)
    with engine.connect() as conn:
        table.create(conn)
        raw = conn.connection.driver_connection
        assert raw is not None
        plan = "\n".join(r[0] for r in raw.execute("EXPLAIN " + str(compiled), compiled.params))
    assert "cstring" not in plan and "'{0,1,2," in plan  # a constant array, parsed once


def test_string_types_other_than_plain_ones_keep_their_type_and_nothing_is_cut(
    engine: sa.Engine,
) -> None:
    compiled = [
        str(array(["ab"], of).compile(dialect=engine.dialect))
        for of in (sa.CHAR(2), sa.Enum("ab", "cd", name="pair"), sa.String(5), AutoString(5))
    ]
    assert "CHAR(2)[]" in compiled[0] and "pair[]" in compiled[1]
    assert all("TEXT[]" in c for c in compiled[2:])

    class Word(str):
        """A str subclass (as an enum of strings): psycopg's list path, still not cut."""

    table = sa.Table("arrays_cut", sa.MetaData(), sa.Column("v", AutoString(3)),
                     prefixes=["TEMPORARY"])  # fmt: skip
    with engine.connect() as conn:
        table.create(conn)
        conn.execute(sa.insert(table), [{"v": "abc"}])
        given = array([Word("abcdef")], table.c.v.type)
        assert array_literal([Word("abcdef")]) is None
        found = conn.execute(sa.select(table.c.v).where(table.c.v == sa.any_(given))).scalars()
        assert list(found) == []
