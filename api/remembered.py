"""Hot read queries whose SQL is built once and reused (issue #13 item 1).

Tortoise turns a queryset into SQL on every await: resolving its filters (``Q`` objects, relations), copying pypika's
query and rendering it cost 0.3–1 ms of CPU a statement — more than SQLite spends running it. The progress query sends
the same few statements on every request (the viewer's project, its visible cases, their clocks, buildings, the
template's stages). ``select`` keeps, per *key*, the queryset as Tortoise prepared it and the SQL text and parameters it
rendered, and runs the next ask through the queryset's own executor with that text: the same rows, turned into the same
model instances (or ``values_list`` tuples) by the same Tortoise code, without building the query again.

Rows of a plain model query (no ``select_related``, prefetch or annotation) become instances through ``instances``:
what Tortoise's ``Model._init_from_db`` makes of a row — the same attributes, converted by the same fields — from a plan
made once per model and column list, without a keyword dict per row and four ``__setattr__`` calls through the model's
override per instance (~20 µs an instance, ~70 instances a progress answer).

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
from operator import itemgetter
from typing import Any, Callable, Hashable

from tortoise.exceptions import DoesNotExist, MultipleObjectsReturned
from tortoise.expressions import Q
from tortoise.queryset import AwaitableQuery, QuerySet

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


class _Plan:
    """How to turn rows with these columns into instances of the model, as ``Model._init_from_db`` does."""

    __slots__ = ("model", "flags", "native", "take_native", "default", "complex")

    def __init__(self, model: type, columns: tuple[str, ...]) -> None:
        meta = model._meta
        position = {column: i for i, column in enumerate(columns)}
        self.model = model
        # The order of _init_from_db: its four flags, then native, default and complex fields.
        self.flags = {"_partial": False, "_saved_in_db": True,
                      "_custom_generated_pk": meta.db_pk_column not in meta.generated_db_fields}
        self.native = tuple(attr for _, attr, _ in meta.db_native_fields)
        indexes = [position[key] for key, _, _ in meta.db_native_fields]
        self.take_native = (itemgetter(*indexes) if len(indexes) > 1
                            else (lambda row, i=indexes[0]: (row[i],)) if indexes else (lambda row: ()))
        self.default = tuple((position[key], attr, field.field_type) for key, attr, field in meta.db_default_fields)
        self.complex = tuple((position[key], attr, field.to_python_value) for key, attr, field in meta.db_complex_fields)

    def build(self, row: Any) -> Any:
        model = self.model
        instance = model.__new__(model)
        values = instance.__dict__
        values.update(self.flags)
        values["_await_when_save"] = {}
        values.update(zip(self.native, self.take_native(row)))
        for i, attr, field_type in self.default:
            value = row[i]
            values[attr] = None if value is None else field_type(value)
        for i, attr, to_python in self.complex:
            values[attr] = to_python(row[i])
        return instance


def _fields_of(meta: Any) -> tuple[list, list, list]:
    # Tortoise fills these lists anew (in place) at each ``Tortoise.init``, per database — whose driver decides which
    # values are native (asyncpg's Decimal is, SQLite's is not) — in an order that may differ: a plan is valid while
    # they hold what they held when it was made.
    return meta.db_native_fields, meta.db_default_fields, meta.db_complex_fields


_PLANS: dict[tuple[type, tuple[str, ...]], tuple[tuple[list, list, list], _Plan | None]] = {}  # (fields then, plan)


def _plan(model: type, columns: tuple[str, ...]) -> _Plan | None:
    """The plan for these columns; None when they are not exactly the model's fields (a partial or widened select:
    Tortoise's own way then)."""
    key = (model, columns)
    meta = model._meta
    made = _PLANS.get(key)
    if made is not None and made[0] == _fields_of(meta):
        return made[1]
    fields = [*meta.db_native_fields, *meta.db_default_fields, *meta.db_complex_fields]
    keys = {key for key, _, _ in fields}
    plain = len(set(columns)) == len(columns) == len(fields) and set(columns) == keys
    # _init_from_db sets each attribute through object.__setattr__: a data descriptor of that name would see it, a dict
    # written directly would not
    plain = plain and not any(hasattr(getattr(model, attr, None), "__set__") for _, attr, _ in fields)
    plan = _Plan(model, columns) if plain else None
    _PLANS[key] = (tuple(map(list, _fields_of(meta))), plan)
    return plan


def instances(model: type, rows: Any) -> list[Any]:
    """``[model._init_from_db(**row) for row in rows]`` — the same instances — for rows of the database driver
    (sqlite3.Row, asyncpg Record: indexable, with ``keys()``)."""
    if not rows:
        return []
    plan = _plan(model, tuple(rows[0].keys()))
    if plan is None:
        return [model._init_from_db(**dict(row)) for row in rows]
    return list(map(plan.build, rows))


def _plain(query: AwaitableQuery) -> bool:
    """A queryset whose ``_execute`` only turns its rows into model instances (``instances`` can do it): its only
    "select related" entry is the model itself (Tortoise lists it for every prepared queryset)."""
    if type(query) is not QuerySet or query._prefetch_map or query._prefetch_queries or query._annotations:
        return False
    related = query._select_related_idx
    return not related or (len(related) == 1 and related[0][0] is query.model and tuple(related[0][4]) == (None,))


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
    if _plain(template) and template.model is model:
        _, rows = await db.execute_query(sql, list(params))
        found = instances(model, rows)
        if not template._single:
            return found
        if len(found) == 1:
            return found[0]
        if not found:
            if template._raise_does_not_exist:
                raise DoesNotExist(model)
            return None
        raise MultipleObjectsReturned(model)
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
