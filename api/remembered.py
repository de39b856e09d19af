"""Hot read queries whose SQL is built once and reused (issue #13 item 1).

Tortoise turns a queryset into SQL on every await: resolving its filters (``Q`` objects, relations), copying pypika's
query and rendering it cost 0.3–1 ms of CPU a statement — more than SQLite spends running it. The progress query sends
the same few statements on every request (the viewer's project, its visible cases, their clocks, buildings, the
template's stages). ``select`` keeps, per *key*, the queryset as Tortoise prepared it and the SQL text and parameters it
rendered, and runs the next ask through the queryset's own executor with that text: the same rows, turned into the same
model instances (or ``values_list`` tuples) by the same Tortoise code, without building the query again.

The key must name everything the SQL and its parameters depend on — the values included (a viewer's scope, the ids):
``q_key`` gives a hashable key of a ``Q`` (a scope) — and the database's dialect is added here. Kept statements are
bounded (least recently used out). Relies on Tortoise's ``_make_query``/``_execute`` split of an awaited queryset
(tortoise-orm 1.1, pinned in requirements/*.lock); ``tests/api/test_remembered.py`` compares every use with the plain
queryset's result.
"""

from __future__ import annotations

import datetime as dt
from collections import OrderedDict
from decimal import Decimal
from enum import Enum
from typing import Any, Callable, Hashable

from tortoise.expressions import Q
from tortoise.queryset import AwaitableQuery

KEPT = 4096
_kept: OrderedDict[Hashable, tuple[AwaitableQuery, str, tuple]] = OrderedDict()


class _Rendered:
    """Stands for pypika's query in a kept queryset: its SQL is already rendered."""

    __slots__ = ("sql", "params")

    def __init__(self, sql: str, params: tuple) -> None:
        self.sql, self.params = sql, params

    def get_parameterized_sql(self, ctx: Any = None) -> tuple[str, list]:
        return self.sql, list(self.params)


class Unkeyable(Exception):
    """A value in a scope cannot be part of a key: run the query the plain way."""


# Values a key may hold: compared by value. Anything else (a subquery, an expression) is compared by identity at best,
# so a scope holding one is run the plain way.
_VALUES = (str, int, float, bool, type(None), dt.date, dt.datetime, dt.time, Decimal, Enum)


def _hashable(value: Any) -> Hashable:
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [_hashable(v) for v in value]
        return (type(value).__name__, *(sorted(items, key=repr) if isinstance(value, (set, frozenset)) else items))
    if isinstance(value, Q):
        return q_key(value)
    if not isinstance(value, _VALUES):
        raise Unkeyable(type(value).__name__)
    return (type(value).__name__, value)


def q_key(q: Q) -> Hashable:
    """A hashable key equal for two ``Q`` that filter alike (same structure, lookups and values)."""
    return (
        q.join_type,
        q._is_negated,
        tuple(sorted((name, _hashable(value)) for name, value in q.filters.items())),
        tuple(q_key(child) for child in q.children),
    )


_SLOTS: dict[type, tuple[str, ...]] = {}


def _shallow_copy(template: Any) -> Any:
    """``copy.copy`` of a queryset (a class with ``__slots__``), without the pickle protocol's detour (~40 µs)."""
    cls = type(template)
    names = _SLOTS.get(cls)
    if names is None:
        names = _SLOTS[cls] = tuple(dict.fromkeys(
            name for klass in cls.__mro__ for name in getattr(klass, "__slots__", ())
            if name not in ("__weakref__", "__dict__")
        ))
    clone = object.__new__(cls)
    for name in names:
        try:
            object.__setattr__(clone, name, object.__getattribute__(template, name))
        except AttributeError:  # a slot never set
            pass
    if hasattr(template, "__dict__"):
        clone.__dict__.update(template.__dict__)
    return clone


async def select(model: type, key: Hashable | None, build: Callable[[], AwaitableQuery]) -> Any:
    """What awaiting ``build()`` gives, with its SQL rendered once per ``key`` (and database dialect); with no key
    (``scoped_key`` found a value it cannot compare), built and run the plain way."""
    if key is None:
        return await build()
    db = model._meta.db
    full_key = (db.capabilities.dialect, key)
    kept = _kept.get(full_key)
    if kept is None:
        query = build()
        query._choose_db_if_not_chosen()
        query._make_query()
        sql, params = query.query.get_parameterized_sql()
        kept = (query, sql, tuple(params))
        _kept[full_key] = kept
        while len(_kept) > KEPT:
            _kept.popitem(last=False)
    else:
        _kept.move_to_end(full_key)
    template, sql, params = kept
    query = _shallow_copy(template)  # the prepared queryset's state, shared read-only; its own connection and SQL
    query._db = db
    query.query = _Rendered(sql, params)
    return await query._execute()


def scoped_key(name: str, scope: Q, *values: Any) -> Hashable | None:
    """``(name, scope, values)`` as a key, or None when the scope holds a value that cannot be one."""
    try:
        return (name, q_key(scope), _hashable(values))
    except Unkeyable:
        return None
