"""Tell this process's caches which rows of a table changed, once the transaction that changed them commits.

`watch(Model, "user_id", callback)`: after a commit that inserted, updated or deleted rows of `Model`
through the ORM, `callback` gets the set of those rows' `user_id` values; a bulk `update()`/`delete()`
statement (which names no rows) gives None, meaning "any". A rolled-back transaction calls nothing.
Callbacks are held weakly when they are bound methods, so a discarded service stops listening.

Only this process's writes are seen: a cache that must hold across replicas needs a shared channel too.
"""

from __future__ import annotations

import weakref
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState, Session

Callback = Callable[[set[Any] | None], None]
_watchers: dict[type, list[tuple[str, Callable[[], Callback | None]]]] = defaultdict(list)
_PENDING = "changed_rows"


def watch(model: type, column: str, callback: Callback) -> None:
    ref = weakref.WeakMethod(callback) if hasattr(callback, "__self__") else (lambda: callback)
    if model not in _watchers:
        for name in ("after_insert", "after_update", "after_delete"):
            event.listen(model, name, _row_changed)
    _watchers[model].append((column, ref))


def _pending(session: Session) -> dict[type, set[Any] | None]:
    return session.info.setdefault(_PENDING, {})


def _row_changed(_mapper, _connection, target) -> None:
    session = Session.object_session(target)
    if session is None:
        return
    pending = _pending(session)
    for model in type(target).__mro__:
        if model in _watchers:
            for column, _ref in _watchers[model]:
                values = pending.setdefault((model, column), set())
                if values is not None:
                    values.add(getattr(target, column))


@event.listens_for(Session, "do_orm_execute")
def _bulk(state: ORMExecuteState) -> None:
    if not (state.is_update or state.is_delete) or state.bind_mapper is None:
        return
    model = state.bind_mapper.class_
    for column, _ref in _watchers.get(model, ()):
        _pending(state.session)[(model, column)] = None


@event.listens_for(Session, "after_commit")
def _committed(session: Session) -> None:
    pending = session.info.pop(_PENDING, None)
    if not pending:
        return
    for (model, column), values in pending.items():
        alive = []
        for watched_column, ref in _watchers.get(model, ()):
            callback = ref()
            if callback is None:
                continue
            alive.append((watched_column, ref))
            if watched_column == column:
                callback(values)
        _watchers[model] = alive


@event.listens_for(Session, "after_rollback")
def _rolled_back(session: Session) -> None:
    session.info.pop(_PENDING, None)
