"""The per-request context: who asks, the clock, the calendar, and the DataLoaders.

Loaders are made anew for every request, so batching never leaks one viewer's rows into another's request, and the
number of SQL queries of a request does not grow with the number of objects it returns (DESIGN.md §3).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections import defaultdict
from typing import Any, Awaitable, Callable, Iterable, TypeVar

from strawberry.dataloader import DataLoader

from tortoise.expressions import Q

from api import remembered
from api.changes import Generation, note_read
from api.domain.calendar import WorkCalendar
from api.domain.timing import SHANGHAI, Timing, local_date
from api.models import (
    Application,
    ApprovalItem,
    Building,
    CalendarYear,
    Case,
    CaseEvent,
    DeliveryAttempt,
    Department,
    Notice,
    Organization,
    Project,
    TemplateStage,
    User,
)
from api.remembered import scoped_key
from api.services.access import Viewer, case_scope
from api.services.calendar import get_calendar
from api.services import clocks
from api.settings import Settings

K = TypeVar("K")
V = TypeVar("V")


# The SQL of ``SELECT … WHERE pk IN (n placeholders)`` per model, database dialect and n, as Tortoise writes it: building
# it (pypika) cost more CPU than the statement itself (~0.4 ms of a loaded core; issue #13).
_BY_PK_SQL: dict[tuple[type, str, int], str] = {}


def _by_pk(model) -> Callable[[list[int]], Awaitable[list[Any]]]:
    """Rows by primary key, as model instances built from the rows exactly as a Tortoise queryset builds them."""

    async def load(keys: list[int]) -> list[Any]:
        wanted = list(set(keys))
        db = model._meta.db
        statement = (model, db.capabilities.dialect, len(wanted))
        sql = _BY_PK_SQL.get(statement)
        if sql is None:
            sql = _BY_PK_SQL[statement] = model.filter(pk__in=wanted).using_db(db).sql()
        _, found = await db.execute_query(sql, wanted)
        rows = {row.pk: row for row in remembered.instances(model, found)}
        return [rows.get(k) for k in keys]

    return load


def _remembered(model: type, name: str, scope: Q, build: Callable[[list[Any]], Any]):
    """``build(keys)`` awaited, its SQL kept per scope and keys (api/remembered.py)."""

    async def fetch(keys: list[Any]) -> Any:
        keys = sorted(keys)
        return await remembered.select(model, scoped_key(name, scope, *keys), lambda: build(keys))

    return fetch


def _grouped(fetch: Callable[[list[Any]], Awaitable[Iterable[Any]]], key: Callable[[Any], Any]):
    async def load(keys: list[Any]) -> list[list[Any]]:
        groups: dict[Any, list[Any]] = defaultdict(list)
        for row in await fetch(list(set(keys))):
            groups[key(row)].append(row)
        return [groups.get(k, []) for k in keys]

    return load


async def _latest_guides(item_ids: list[int]) -> list[Any]:
    from api.models import ItemGuide

    latest: dict[int, Any] = {}
    for row in await ItemGuide.filter(item_id__in=list(set(item_ids))).order_by("version"):
        latest[row.item_id] = row
    return [latest.get(i) for i in item_ids]


MISSING = object()


def held(loader: DataLoader, key: Any) -> Any:
    """The loader's value for ``key`` when it has it already, else ``MISSING`` (asking nothing of it)."""
    future = loader.cache_map.get(key) if loader.cache else None
    if future is None or not future.done() or future.cancelled() or future.exception() is not None:
        return MISSING
    return future.result()


def loaded(loader: DataLoader, key: Any) -> Any:
    """The loader's value for ``key`` itself when it already has it (no awaiting: the field resolves synchronously, and
    a list of such fields needs no gathering of tasks), else the awaitable of it (issue #13)."""
    value = held(loader, key)
    return loader.load(key) if value is MISSING else value


async def load_all(loader: DataLoader, keys: Iterable[Any]) -> list[Any]:
    """What ``loader.load_many(keys)`` gives, without a future and a gathered task callback per key (~50 a progress
    answer; issue #13): the keys the loader does not hold yet go to its batch function in one call and are primed; a key
    another resolver is loading at the same moment is awaited."""
    keys = list(keys)
    if not loader.cache:  # a loader that only batches what is asked in one tick: it must see every key
        return await loader.load_many(keys)
    cache = loader.cache_map
    missing = [key for key in dict.fromkeys(keys) if cache.get(key) is None]
    if missing:
        loader.prime_many(dict(zip(missing, await loader.load_fn(missing))))
    values = []
    for key in keys:
        value = loaded(loader, key)
        values.append(await value if isinstance(value, asyncio.Future) else value)
    return values


class _Loader:
    """A loader of :class:`Loaders`, made at its first use in a request (a request uses three or four of fifteen, and
    making a DataLoader costs ~3 µs; issue #13); then an attribute of the instance like any other."""

    def __init__(self, make: Callable[["Loaders"], DataLoader]) -> None:
        self.make = make

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, loaders: "Loaders | None", owner: type | None = None) -> Any:
        if loaders is None:
            return self
        loader = loaders.__dict__[self.name] = self.make(loaders)
        return loader


def _visible_cases(loaders: "Loaders") -> DataLoader:
    # Only the cases the viewer may see: an approver sees its own department's cases of a project.
    scope = case_scope(loaders.viewer)
    return DataLoader(
        _grouped(
            _remembered(
                Case, "visible_cases", scope,
                lambda ids: Case.filter(scope, project_id__in=ids).order_by("stage", "id"),
            ),
            lambda c: c.project_id,
        )
    )


class Loaders:
    def __init__(self, viewer: Viewer | None) -> None:
        self.viewer = viewer

    project = _Loader(lambda _: DataLoader(_by_pk(Project)))
    organization = _Loader(lambda _: DataLoader(_by_pk(Organization)))
    department = _Loader(lambda _: DataLoader(_by_pk(Department)))
    item = _Loader(lambda _: DataLoader(_by_pk(ApprovalItem)))
    application = _Loader(lambda _: DataLoader(_by_pk(Application)))
    user = _Loader(lambda _: DataLoader(_by_pk(User)))
    events_by_case = _Loader(lambda _: DataLoader(
        _grouped(lambda ids: CaseEvent.filter(case_id__in=ids).order_by("case_id", "seq"), lambda e: e.case_id)
    ))
    visible_cases_by_project = _Loader(_visible_cases)
    certificate_by_case = _Loader(lambda loaders: DataLoader(loaders._certificates_by_case))
    visible_subject = _Loader(lambda loaders: DataLoader(loaders._visible_subjects))
    notice = _Loader(lambda _: DataLoader(_by_pk(Notice)))
    attempts_by_delivery = _Loader(lambda _: DataLoader(
        _grouped(
            lambda ids: DeliveryAttempt.filter(delivery_id__in=ids).order_by("delivery_id", "number"),
            lambda a: a.delivery_id,
        )
    ))
    buildings_by_project = _Loader(lambda _: DataLoader(
        _grouped(
            _remembered(Building, "buildings", Q(), lambda ids: Building.filter(project_id__in=ids).order_by("id")),
            lambda b: b.project_id,
        )
    ))
    guide_by_item = _Loader(lambda _: DataLoader(_latest_guides))  # 办事指南, latest version (api/schema/guides.py)
    # (process type, stage, lead department id) of each stage of the process types' templates: what a project's
    # stages read of them (not the forms and materials, JSON parsed for nothing on every progress request).
    stages_by_process_type = _Loader(lambda _: DataLoader(
        _grouped(
            _remembered(
                TemplateStage, "template_stage_leads", Q(),
                lambda types: TemplateStage.filter(template__process_type__in=types)
                .order_by("stage")
                .values_list("template__process_type", "stage", "lead_department_id"),
            ),
            lambda row: row[0],
        )
    ))

    async def _visible_subjects(self, keys: list[tuple[str, int]]) -> list[Any]:
        """Objects by (node type, key) among those the viewer may see now: one statement per type (notice subjects)."""
        from api.models import Certificate, Complaint, Rating
        from api.services.certificates import certificate_scope
        from api.services.complaints import complaint_scope
        from api.services.ratings import rating_scope

        scoped = {"Case": (Case, case_scope), "Certificate": (Certificate, certificate_scope),
                  "Complaint": (Complaint, complaint_scope), "Rating": (Rating, rating_scope)}
        wanted: dict[str, set[int]] = defaultdict(set)
        for kind, pk in keys:
            wanted[kind].add(pk)
        found: dict[tuple[str, int], Any] = {}
        for kind, pks in wanted.items():
            model, scope = scoped[kind]
            for row in await model.filter(scope(self.viewer), id__in=list(pks)):
                found[(kind, row.pk)] = row
        return [found.get(key) for key in keys]

    async def _certificates_by_case(self, case_ids: list[int]) -> list[Any]:
        """The newest certificate of each case, among those the viewer may see."""
        from api.models import Certificate
        from api.services.certificates import certificate_scope

        newest: dict[int, Any] = {}
        for row in await Certificate.filter(certificate_scope(self.viewer), case_id__in=list(set(case_ids))).order_by("id"):
            newest[row.case_id] = row
        return [newest.get(case_id) for case_id in case_ids]


class _Volatile:
    """An attribute of the context whose reading marks the request's answer volatile; the value is in ``_<name>``."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name, self.slot = name, f"_{name}"

    def __get__(self, context: "Context | None", owner: type | None = None) -> Any:
        if context is None:
            return self
        context._touch(self.name)
        return getattr(context, self.slot)


class Context:
    """What a resolver may use besides the database.

    The response cache (api/response_cache.py) may keep an answer only while it would be computed the same: from the
    database (its generation is checked), the viewer, the settings and *the date*. So what would make an answer
    differ within a day says so when a resolver touches it: the moment itself (``now``), the HTTP request, WeChat,
    the live-event broker and the rate limiter each mark the answer ``volatile``, and it is never kept. Working-day
    clocks and lights depend on the date alone and read ``today_start`` (midnight of today in Asia/Shanghai) instead.
    """

    def __init__(
        self,
        *,
        settings: Settings,
        viewer: Viewer | None,
        now: dt.datetime,
        request: Any = None,
        wechat: Any = None,
        broker: Any = None,
        rate_limiter: Any = None,
        generation: Any = None,
    ) -> None:
        self.settings = settings
        self.viewer = viewer
        self._now = now
        self._request = request
        self._wechat = wechat  # the process's miniapp.MiniProgram
        self._broker = broker  # api.broker: live events to subscribers
        self._rate_limiter = rate_limiter  # api.ratelimit.RateLimiter: the public endpoints' limits
        self.generation = generation  # the database generation the request started at (api/changes.py)
        self.volatile: str | None = None  # what made the answer depend on more than the data and the date
        self.keepable = False  # set after execution by api.schema.KeepableAnswer
        self.operation_name: str | None = None  # for the request log, set by api.schema.KeepableAnswer
        self.loaders = Loaders(viewer)
        self._calendar: WorkCalendar | None = None
        self._calendar_lock = asyncio.Lock()
        self._timings: dict[int, asyncio.Future[Timing]] = {}
        self._timed: dict[int, Timing] = {}  # the computed ones, read by the timing fields without the future
        self._clocks = DataLoader(self._load_clocks, cache=False)  # batches the cases asked for in one tick

    def _touch(self, what: str) -> None:
        if self.volatile is None:
            self.volatile = what

    # The moment of the request, the HTTP request, WeChat, the broker and the rate limiter: reading one makes the
    # answer volatile (never kept by the response cache).
    now = _Volatile()
    request = _Volatile()
    wechat = _Volatile()
    broker = _Volatile()
    rate_limiter = _Volatile()

    @property
    def today(self) -> dt.date:
        """Today in Asia/Shanghai."""
        return local_date(self._now)

    @property
    def today_start(self) -> dt.datetime:
        """Midnight at the start of today in Asia/Shanghai: the "now" of computations that read only its date (the
        working-day clock, lights). Passing midnight, not the moment, makes every answer of the day agree."""
        return dt.datetime.combine(self.today, dt.time(), tzinfo=SHANGHAI)

    async def public_rate_limited(self, endpoint: str) -> bool:
        """This client has used up the anonymous endpoints' per-minute limit (api/ratelimit.py)."""
        from api.ratelimit import client_address

        if self.rate_limiter is None:
            return False
        wait = await self.rate_limiter.retry_after(
            f"{endpoint}:{client_address(self.request)}", limit=self.settings.public_verify_per_minute, window=60,
            now=self.now.timestamp(),
        )
        return wait is not None

    async def content_check(self, text: str, openid: str | None) -> str:
        """WeChat content security (msgSecCheck v2) of what a user wrote: "pass", "review" or "risky".

        WeChat checks text in the name of a user who opened the mini-program lately (it needs the openid). Without an
        openid, or while WeChat is unreachable, the text is accepted and flagged for a person to read ("review"):
        a citizen's complaint is never lost because a check could not run.
        """
        from miniapp.errors import WeChatError

        if self.wechat is None or self.wechat.console:
            return "pass"
        if not openid:
            return "review"
        try:
            verdict = await self.wechat.check_text(text, openid=openid)
        except WeChatError:
            return "review"
        return verdict.suggest.value

    async def calendar(self) -> WorkCalendar:
        async with self._calendar_lock:  # resolvers run concurrently: read it once
            if self._calendar is None:
                version = self.generation
                if isinstance(version, Generation):  # only a load of the calendar moves it (api/changes.py)
                    version = version.version_of(CalendarYear._meta.db_table)
                self._calendar = await get_calendar(self.settings.calendar_cache_seconds, version=version)
            note_read(CalendarYear._meta.db_table)  # perhaps from the process's copy: the answer depends on it
        return self._calendar

    async def timing(self, case: Case) -> Timing:
        """The case's clock, computed once per request from its events."""
        return (await self.timings([case]))[0]

    def timing_field(self, case: Case, attr: str) -> Any:
        """One figure of the case's clock: the value itself when the clock is already computed (the common case in
        a project's stages), else an awaitable of it. Saves a coroutine per field on the hot progress query."""
        timing = self._timed.get(case.id)  # set with its future's result
        if timing is not None:
            return getattr(timing, attr)

        async def later() -> Any:
            return getattr(await self.timing(case), attr)

        return later()

    async def _load_clocks(self, case_ids: list[int]) -> list[Timing]:
        found = await clocks.timings_at(case_ids, await self.calendar(), self.today)
        return [found[case_id] for case_id in case_ids]

    async def timings(self, cases: list[Case]) -> list[Timing]:
        """Clocks of many cases from their read-model rows in one statement (api/services/clocks.py).

        The timing fields of a case (light, used, remaining, due date, ...) resolve concurrently: the first asker
        starts the computation and every other one awaits the same future, so each clock is computed once.
        """
        missing = [c for c in cases if c.id not in self._timings]
        if missing:
            loop = asyncio.get_running_loop()
            for case in missing:
                self._timings[case.id] = loop.create_future()
            try:
                ids = [c.id for c in missing]
                # A list is a batch already (a project's cases): read it at once, with no future per case nor a turn
                # of the loop for the DataLoader's dispatch; a single case waits for its siblings' asks in this tick.
                found = await (self._load_clocks(ids) if len(ids) > 1 else self._clocks.load_many(ids))
                for case, timing in zip(missing, found):
                    self._timings[case.id].set_result(timing)
                    self._timed[case.id] = timing
            except BaseException as exc:
                for case in missing:
                    future = self._timings.pop(case.id)
                    if not future.done():
                        future.set_exception(exc)
                        future.exception()  # retrieved: the asker below re-raises it
                raise
        return [await self._timings[c.id] for c in cases]
