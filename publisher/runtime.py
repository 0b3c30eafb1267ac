"""The running context an entry point builds once from Settings and hands down.

It owns the engine and the shared read-only data (region tree, inferrer); nothing
here exists at import time, so tests can run several runtimes side by side.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from functools import cached_property

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine
from sqlmodel import Session

from publisher.db import alembic_config, make_engine, session_scope, upgrade
from publisher.errors import StoreError
from publisher.models import utcnow
from publisher.regions.infer import RegionInferrer
from publisher.regions.tree import RegionTree
from publisher.settings import Settings
from publisher.store.regions import sync_regions
from publisher.tokens import Tokens


class Runtime:
    """Settings plus the engine and region data built from them, created lazily."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._tokens: tuple[tuple[str, ...], Tokens] | None = None

    @cached_property
    def engine(self) -> Engine:
        return make_engine(self.settings.database_url)

    @cached_property
    def tree(self) -> RegionTree:
        return RegionTree.load()

    @cached_property
    def inferrer(self) -> RegionInferrer:
        return RegionInferrer(self.tree, default=self.tree.normalize(self.settings.default_region))

    @property
    def tokens(self) -> Tokens:
        """The signer of every link (SECRET_KEY, even when set later); ConfigError when unset."""
        keys = tuple(self.settings.secret_keys())
        if self._tokens is None or self._tokens[0] != keys:
            self._tokens = (keys, Tokens(list(keys)))
        return self._tokens[1]

    def now(self) -> datetime:
        """The clock every pipeline asks; tests replace it."""
        return utcnow()

    @contextmanager
    def session(self) -> Iterator[Session]:
        with session_scope(self.engine) as session:
            yield session

    def migrate(self) -> None:
        """Upgrade the schema and mirror the region tree into it."""
        upgrade(self.engine)
        with self.session() as session:
            sync_regions(session, tree=self.tree)

    def require_schema(self) -> None:
        """Refuse to work on a database that `publisher db upgrade` has not brought up to date."""
        head = ScriptDirectory.from_config(alembic_config(self.engine)).get_current_head()
        try:
            with self.engine.connect() as conn:
                current = MigrationContext.configure(conn).get_current_revision()
        except Exception as e:
            raise StoreError(f"cannot open the database: {e}") from e
        if current != head:
            raise StoreError(
                f"the database schema is at {current or 'nothing'}, not {head}: "
                "run `publisher db upgrade` first"
            )

    def close(self) -> None:
        if "engine" in self.__dict__:
            self.engine.dispose()
