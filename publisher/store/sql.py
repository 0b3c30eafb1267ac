"""Many values in one query: one array parameter on PostgreSQL, IN lists of bounded size on SQLite.

Binding thousands of parameters is slow on PostgreSQL (each is rendered, sent and typed on its
own, and the statement text differs with every count), while SQLite has no arrays and a limit on
how many parameters a statement may bind. A fire asks about thousands of readers a page, so its
queries take their id lists through ``one_of`` and ``parts``: one array per query on
PostgreSQL, the familiar batches on SQLite. Consecutive ids (a fire's digests) go as ranges
through ``among``: a few numbers, whatever the count.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Sequence
from datetime import datetime
from itertools import islice
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlmodel import Session

V = TypeVar("V")
_PG = postgresql.psycopg.dialect()  # the one backend with arrays: what its types bind


def batched(values: Iterable[V], size: int) -> Iterator[list[V]]:
    """Lists of ``size`` values (the last may be shorter); itertools.batched is Python 3.12+."""
    it = iter(values)
    while part := list(islice(it, size)):
        yield part


def is_postgres(session: Session) -> bool:
    """Whether ``session`` talks to PostgreSQL, the one backend with array parameters."""
    return session.get_bind().dialect.name == "postgresql"


def parts(session: Session, values: Iterable[V], size: int) -> Iterator[list[V]]:
    """``values`` as one list on PostgreSQL (one array parameter however many), in lists of
    ``size`` on SQLite (its parameter limit); nothing for no values."""
    if is_postgres(session):
        whole = list(values)
        return iter([whole] if whole else [])
    return batched(values, size)


def array(values: Iterable[Any], of: sa.types.TypeEngine[Any]) -> sa.ColumnElement[Any]:
    """One bind parameter holding ``values`` as a PostgreSQL array of ``of`` (each value goes
    through ``of``'s own conversion, e.g. an aware datetime to naive UTC): as the array's text
    form, cast on the server, when ``array_literal`` can write it, else as a list for psycopg."""
    items = list(values)
    element = _unsized(of)
    process = of.bind_processor(_PG)
    bound = items if process is None else [process(v) for v in items]
    if isinstance(element, sa.Integer) and any(type(v) is bool for v in bound):
        bound = [int(v) if isinstance(v, bool) else v for v in bound]  # as psycopg's cast did
    literal = array_literal(bound)
    if literal is None:  # as a list: ``of`` converts each value, or TEXT takes them converted
        return sa.bindparam(None, items if element is of else bound, type_=sa.ARRAY(element))
    # untyped, so the server takes the parameter itself as the array (its text parsed once),
    # where a cast of a VARCHAR parameter would be evaluated on every row it is compared with
    return sa.cast(sa.bindparam(None, literal, type_=sa.types.NullType()), sa.ARRAY(element))


_PLAIN_STRINGS = (sa.String, sa.VARCHAR, sa.Unicode, sa.Text, sa.UnicodeText)


def _unsized(of: sa.types.TypeEngine[Any]) -> sa.types.TypeEngine[Any]:
    """TEXT for a plain string type: a cast to VARCHAR(n)[] cuts a longer value to n characters,
    so a lookup would match its stored prefix. Other types (enums, CHAR, numbers) stay."""
    impl = of.impl_instance if isinstance(of, sa.types.TypeDecorator) else of
    return sa.Text() if type(impl) in _PLAIN_STRINGS else of


def array_literal(values: Sequence[Any]) -> str | None:
    """``values`` (ints, strings, booleans, naive datetimes or None) in PostgreSQL's array text
    form, e.g. ``{1,2}`` or ``{"a","b \\"c\\""}``; None for any other kind of value.

    psycopg dumps a list parameter element by element in Python, quoting check included: 2 to 4
    µs per value, so a fire's dozen arrays of 100,000 readers cost seconds. Joined here with
    str.join, the same arrays cost a fifth of that and the server parses them.
    """
    kinds = {type(v) for v in values}
    if kinds <= {int}:
        return "{" + ",".join(map(str, values)) + "}"
    if kinds <= {str}:
        plain = "".join(values)
        if '"' in plain or "\\" in plain:
            values = [_escaped(v) for v in values]
        return '{"' + '","'.join(values) + '"}' if values else "{}"
    if (
        not kinds <= {int, str, bool, datetime, type(None)}
        or {int, bool} <= kinds  # an integer array's True is 1, a boolean array's 1 is true
        or any(isinstance(v, datetime) and v.tzinfo is not None for v in values)
    ):
        return None
    return "{" + ",".join(map(_element, values)) + "}"


def array_value(values: Sequence[Any]) -> str | list[Any]:
    """An array parameter of a text statement that casts it (``CAST(:ids AS integer[])``):
    its text form where ``array_literal`` can write it, else the list for psycopg."""
    literal = array_literal(values)
    return list(values) if literal is None else literal


def _element(value: int | str | bool | datetime | None) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, int):
        return str(value)
    return '"' + _escaped(value.isoformat() if isinstance(value, datetime) else value) + '"'


def _escaped(text: str) -> str:
    """``text`` as it goes between the double quotes of an array element."""
    return text.replace("\\", "\\\\").replace('"', '\\"')


def one_of(
    session: Session, column: sa.ColumnElement[Any], values: Collection[Any]
) -> sa.ColumnElement[bool]:
    """``column = ANY(:array)`` on PostgreSQL, one parameter; ``column IN (...)`` on SQLite,
    one parameter per value (the caller keeps SQLite's lists short, see ``parts``)."""
    if is_postgres(session):
        return column == sa.any_(array(values, column.type))
    return column.in_(list(values))


def tuple_of(
    session: Session, columns: Sequence[sa.ColumnElement[Any]], values: Sequence[tuple[Any, ...]]
) -> sa.ColumnElement[bool]:
    """``(columns) IN values``: on PostgreSQL against one array per column, unnested side by
    side; on SQLite one parameter per column per value (the caller keeps the list short)."""
    if not is_postgres(session):
        return sa.tuple_(*columns).in_(values)
    names = [f"v{i}" for i in range(len(columns))]
    arrays = (array([v[i] for v in values], c.type) for i, c in enumerate(columns))
    given = sa.func.unnest(*arrays).table_valued(*names).render_derived()
    return sa.tuple_(*columns).in_(sa.select(*given.c))


class IdRuns(Collection[int]):
    """Ids kept as runs of consecutive ids, worked out once: a send filters every claim by the
    ten thousand consecutive digest ids of a fire, and must not sort them again per claim."""

    __slots__ = ("_size", "runs")

    def __init__(self, ids: Iterable[int]) -> None:
        runs: list[list[int]] = []
        for i in sorted(set(ids)):
            if runs and runs[-1][1] == i - 1:
                runs[-1][1] = i
            else:
                runs.append([i, i])
        self.runs = tuple((lo, hi) for lo, hi in runs)
        self._size = sum(hi - lo + 1 for lo, hi in self.runs)

    @classmethod
    def of(cls, ids: Collection[int]) -> IdRuns:
        return ids if isinstance(ids, IdRuns) else cls(ids)

    def __len__(self) -> int:
        return self._size

    def __iter__(self) -> Iterator[int]:
        return (i for lo, hi in self.runs for i in range(lo, hi + 1))

    def __contains__(self, value: object) -> bool:
        return any(lo <= value <= hi for lo, hi in self.runs) if isinstance(value, int) else False


def among(column: sa.ColumnElement[int], ids: Collection[int]) -> sa.ColumnElement[bool]:
    """``column IN ids`` with runs of three or more consecutive ids as ranges, so a claim binds
    a few numbers, not ten thousand."""
    singles: list[int] = []
    ranges: list[sa.ColumnElement[bool]] = []
    for lo, hi in IdRuns.of(ids).runs:
        if hi - lo >= 2:
            ranges.append(column.between(lo, hi))
        else:
            singles += range(lo, hi + 1)
    if singles:
        ranges.append(column.in_(singles))
    return sa.or_(*ranges) if ranges else sa.false()
