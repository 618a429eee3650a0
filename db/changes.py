"""Tell this process's caches which rows of a table changed, once the transaction that changed them commits.

`watch(Model, "user_id", callback)`: after a commit that inserted, updated or deleted rows of `Model`
through the ORM, `callback` gets the set of those rows' `user_id` values; a bulk `update()`/`delete()`
statement gives the values its WHERE pins the column to (`col == v`, `col IN (...)`, alone or ANDed), else
None, meaning "any". A rolled-back transaction calls nothing. Callbacks are held weakly when they are bound
methods, so a discarded service stops listening. `watch(..., database=db)` hears only commits made through
that `Database` (its connection pool), as if it were a process of its own (tests run two "replicas" in one).

Only this process's writes are seen. For caches that must hold across replicas, `forward(database, sink)`
hands every commit's changes, as `{(table name, column): values or None}`, to a sink (services/invalidations.py
publishes them in Redis), and `apply(database, table, column, values)` runs the watchers as if the change had
been committed here (a message from another replica).
"""

from __future__ import annotations

import weakref
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState, Session
from sqlalchemy.sql import operators
from sqlalchemy.sql.elements import BinaryExpression, BindParameter, BooleanClauseList

Callback = Callable[[set[Any] | None], None]
Changes = dict[tuple[str, str], set[Any] | None]  # (table name, column) -> values, None: any
Sink = Callable[[Changes], None]
# model -> (column, callback reference, the pool it listens to or None for every database)
_watchers: dict[type, list[tuple[str, Callable[[], Callback | None], Any]]] = defaultdict(list)
_sinks: list[tuple[Any, Sink]] = []
_PENDING = "changed_rows"


def _scope(database: Any) -> Any:
    """What tells one `Database`'s sessions from another's: its engine's connection pool (shared by the
    engine's variants, e.g. the write engine with BEGIN IMMEDIATE)."""
    return None if database is None else database.engine.sync_engine.pool


def watch(model: type, column: str, callback: Callback, *, database: Any = None) -> None:
    ref = weakref.WeakMethod(callback) if hasattr(callback, "__self__") else (lambda: callback)
    if model not in _watchers:
        for name in ("after_insert", "after_update", "after_delete"):
            event.listen(model, name, _row_changed)
    _watchers[model].append((column, ref, _scope(database)))


def forward(database: Any, sink: Sink) -> Callable[[], None]:
    """Hand the changes of every commit made through `database` to `sink` (called synchronously, after the
    commit; it must not block). Returns the function that stops it."""
    entry = (_scope(database), sink)
    _sinks.append(entry)
    return lambda: _sinks.remove(entry) if entry in _sinks else None


def apply(database: Any, table: str, column: str, values: set[Any] | None) -> None:
    """Run the watchers of `database` (and the unscoped ones) for a change committed elsewhere."""
    scope = _scope(database)
    for model in list(_watchers):
        if getattr(model, "__tablename__", None) == table:
            _notify(model, column, values, scope)


def watched() -> list[tuple[str, str]]:
    """Every (table, column) some cache watches."""
    return sorted({(model.__tablename__, column) for model, entries in _watchers.items() for column, *_ in entries
                   if hasattr(model, "__tablename__")})


def _notify(model: type, column: str, values: set[Any] | None, scope: Any) -> None:
    alive = []
    for watched_column, ref, watcher_scope in _watchers.get(model, ()):
        callback = ref()
        if callback is None:
            continue
        alive.append((watched_column, ref, watcher_scope))
        if watched_column == column and (watcher_scope is None or watcher_scope is scope):
            callback(set(values) if values is not None else None)
    _watchers[model] = alive


def pinned(where: Any, table: Any, column: str) -> set[Any] | None:
    """The values a WHERE clause restricts `table.column` to (`col == v`, `col IN (v, ...)`, alone or inside
    an AND); None when it does not (then any row may have changed)."""
    if isinstance(where, BooleanClauseList) and where.operator is operators.and_:
        for clause in where.clauses:
            if (found := pinned(clause, table, column)) is not None:
                return found
        return None
    if not isinstance(where, BinaryExpression) or where.operator not in (operators.eq, operators.in_op):
        return None
    left, right = where.left, where.right
    if getattr(left, "table", None) is not table or getattr(left, "key", None) != column:
        return None
    if not isinstance(right, BindParameter) or right.value is None:
        return None
    if where.operator is operators.eq:
        return {right.value}
    return set(right.value) if isinstance(right.value, (list, tuple, set, frozenset)) else None


def _pending(session: Session) -> dict[type, set[Any] | None]:
    return session.info.setdefault(_PENDING, {})


def _row_changed(_mapper, _connection, target) -> None:
    session = Session.object_session(target)
    if session is None:
        return
    pending = _pending(session)
    for model in type(target).__mro__:
        if model in _watchers:
            for column, *_rest in _watchers[model]:
                values = pending.setdefault((model, column), set())
                if values is not None:
                    values.add(getattr(target, column))


@event.listens_for(Session, "do_orm_execute")
def _bulk(state: ORMExecuteState) -> None:
    if not (state.is_update or state.is_delete) or state.bind_mapper is None:
        return
    model = state.bind_mapper.class_
    where = getattr(state.statement, "whereclause", None)
    pending = _pending(state.session)
    for column, *_rest in _watchers.get(model, ()):
        values = pinned(where, model.__table__, column)
        if values is None or ((model, column) in pending and pending[(model, column)] is None):
            pending[(model, column)] = None
        else:
            pending[(model, column)] = pending.get((model, column), set()) | values


@event.listens_for(Session, "after_commit")
def _committed(session: Session) -> None:
    pending = session.info.pop(_PENDING, None)
    if not pending:
        return
    scope = getattr(session.bind, "pool", None)
    for (model, column), values in pending.items():
        _notify(model, column, values, scope)
    sinks = [sink for sink_scope, sink in _sinks if sink_scope is None or sink_scope is scope]
    if sinks:
        changes = {(model.__tablename__, column): values for (model, column), values in pending.items()}
        for sink in sinks:
            sink(changes)


@event.listens_for(Session, "after_rollback")
def _rolled_back(session: Session) -> None:
    session.info.pop(_PENDING, None)
