"""The web service: ``create_app(settings) -> Starlette`` (DESIGN.md §1–2)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import gc
import logging
import time
from typing import Any, Callable

from cross_web import HTTPException
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route, WebSocketRoute
from strawberry.asgi import GraphQL
from tortoise.contrib.starlette import RegisterTortoise

from api.broker import make_broker
from api.busy import handlers as busy_handlers
from api.changes import SCOPE_KEY as GENERATION, ChangeMarker, Generation, generation, marker_for, notes_reads, recording_reads
from api.db import UnmigratedDatabase, config_from_settings, pending_migrations
from api.domain.timing import local_date
from api.headers import NoSniffMiddleware
from api.logs import configure_logging
from api.metrics import CLUSTER_PATH, PATH as METRICS_PATH, Metrics, endpoint as metrics_endpoint
from api.middleware import AuthMiddleware, RequestLogMiddleware
from api.ratelimit import RateLimiter
from api.response_cache import MAX_KEY_BYTES, Entry, ResponseCache
from api.routes.certificates import download, verify_page, verify_upload
from api.routes.dashboard import routes as dashboard_routes
from api.routes.exports import case_stats_csv, case_stats_xlsx
from api.routes.health import healthz, readyz
from api.routes.limits import CappedBody
from api.routes.ingest import ingest_events
from api.routes.uploads import upload
from api.schema import build_schema
from api.schema.context import Context
from api.schema.trusted import with_plain_id
from api.schema.inputs import decode_request_json
from api.services.certificates import sealing_in_child
from api.services.leftovers import refuse_development_leftovers
from api.settings import Settings, get_settings
from miniapp import MiniProgram

log = logging.getLogger("jianshen")
Clock = Callable[[], dt.datetime]
MOMENT = "moment"  # the request's reading of the clock, in its scope state


class GraphQLApp(GraphQL):
    """Strawberry's ASGI view, with the answers to repeated queries kept (api/response_cache.py)."""

    def __init__(
        self,
        settings: Settings,
        clock: Clock,
        wechat: MiniProgram,
        broker: Any,
        rate_limiter: Any,
        changes: ChangeMarker,
    ) -> None:
        super().__init__(
            build_schema(settings),
            graphql_ide="graphiql" if settings.graphiql_enabled else None,
            allow_queries_via_get=False,
        )
        self.settings = settings
        self.clock = clock
        self.wechat = wechat
        self.broker = broker
        self.rate_limiter = rate_limiter
        self.changes = changes
        self.answers = ResponseCache(settings.response_cache_mb * 1024 * 1024)

    @property
    def graphql_ide_html(self) -> str:
        # GraphiQL's scripts from this service, not unpkg.com (api/graphiql.py, issue #12).
        from api.graphiql import offline_graphiql_html

        return offline_graphiql_html()

    def decode_json(self, data: str | bytes) -> object:
        return decode_request_json(data)  # a 400 for anything but a UTF-8 JSON object (api/schema/inputs.py)

    async def get_context(self, request: Any, response: Any = None) -> Context:
        state = request.scope.setdefault("state", {})
        context = Context(
            settings=self.settings,
            viewer=state.get("viewer"),
            now=state.get(MOMENT) or self.clock(),
            request=request,
            wechat=self.wechat,
            broker=self.broker,
            rate_limiter=self.rate_limiter,
            generation=state.get(GENERATION),
        )
        state["graphql_context"] = context
        return context

    async def parse_http_body(self, request: Any) -> Any:
        data = await super().parse_http_body(request)
        if not isinstance(data, list) and data.query is None and request.method == "POST":
            # A plain {"id": …} names a persisted document like Apollo's extension does (api/schema/trusted.py).
            data.extensions = with_plain_id(self.parse_json(await request.get_body()), data.extensions)
        return data

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or not self.answers.enabled:
            await super().__call__(scope, receive, send)
            return
        request = Request(scope, receive)
        body = await request.body()  # kept by the request: Strawberry reads the same bytes
        state = key = None
        if len(body) <= MAX_KEY_BYTES:
            content_type = accept = None
            for name, value in scope["headers"]:
                if name == b"content-type":
                    content_type = value
                elif name == b"accept":
                    accept = value
            key = (scope["state"].get("viewer"), content_type, accept, body)
            # The generation before anything is read (the viewer, if any, was read at this same generation), and one
            # reading of the clock for both the key's date and the execution, so they agree even at midnight.
            now = scope["state"][MOMENT] = self.clock()
            state = self.answers.observe(await generation(self.changes, scope), local_date(now))
            entry = self.answers.get(state, key)
            if entry is not None:
                scope["state"]["cache"] = "hit"
                scope["state"]["operation"] = entry.operation
                await send({"type": "http.response.start", "status": entry.status, "headers": list(entry.headers)})
                await send({"type": "http.response.body", "body": entry.body})
                return
        # PostgreSQL: whether the table versions just read may be trusted alone (api/changes.py), before any data.
        settled = key is not None and isinstance(state and state[0], Generation) and await self.changes.settled()
        with recording_reads() as reads:  # the tables the answer depends on
            try:
                response = await self.run(request)
            except HTTPException as e:
                response = PlainTextResponse(e.reason, status_code=e.status_code)
        context = scope["state"].get("graphql_context")
        if context is not None:
            scope["state"]["operation"] = context.operation_name
        if (
            key is not None
            and context is not None
            and context.keepable
            and response.status_code == 200
            and response.background is None
            and isinstance(getattr(response, "body", None), bytes)
        ):
            self.answers.put(
                state,
                key,
                Entry(response.status_code, tuple(response.raw_headers), response.body, context.operation_name),
                reads if notes_reads() else None,
                settled=settled,
            )
        await response(scope, receive, send)


def system_clock() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


async def _warm_up_assistant() -> None:
    from api.services.assistant import warm_up

    started = time.perf_counter()
    try:
        await warm_up()
        logging.getLogger("jianshen").info(
            "assistant ready", extra={"duration_ms": round((time.perf_counter() - started) * 1000, 1)}
        )
    except Exception:  # an empty catalogue or a database not ready: the first question builds it instead
        logging.getLogger("jianshen").warning("assistant warm-up failed; built on first question", exc_info=True)
    # What the process built to serve — modules, the schema, the catalogue, jieba's dictionary, the guides' index, some
    # 230,000 objects — stays for good: out of the cyclic collector's reach, a full collection no longer walks it
    # (~0.5 s of CPU each, every ~100 executed progress requests: issue #13). Served processes only (tests make many
    # apps in one process: what they froze would never be freed).
    gc.freeze()


def create_app(
    settings: Settings | None = None,
    *,
    check_migrations: bool = True,
    clock: Clock = system_clock,
    run_dispatcher: bool = True,
    produce_certificates: bool = True,
    warm_up: bool = False,
) -> Starlette:
    """The service. ``clock`` is the one source of "now" (tests freeze it to fixed dates).

    ``run_dispatcher``: deliver notices from this process (embedded mode), or, with Redis, wake the arq workers after
    each commit that wrote notices. Tests that drive a dispatcher themselves turn it off.

    ``produce_certificates``: seal the PDFs of issued certificates in this process (right after each approval, and a
    sweep at start and on a timer), or, with Redis, wake the arq workers that do. Off, a PDF is made on its first
    download or by another process's sweep.
    """
    settings = settings or get_settings()
    configure_logging(settings)
    # One WeChat client per process; with Redis its access token is shared by every instance (DOMAIN.md §11).
    redis = None
    if settings.redis_url:
        from redis.asyncio import Redis

        redis = Redis.from_url(settings.redis_url, socket_connect_timeout=5, socket_timeout=5)
    wechat = MiniProgram.from_settings(settings, redis=redis)
    broker = make_broker(settings.redis_url)
    rate_limiter = RateLimiter(settings.redis_url)
    changes = marker_for(settings.database_url)
    graphql_app = GraphQLApp(settings, clock, wechat, broker, rate_limiter, changes)
    graphql_endpoint = CappedBody(graphql_app, settings.graphql_max_body_bytes, "JIANSHEN_GRAPHQL_MAX_BODY_BYTES")
    tortoise_config = config_from_settings(settings)
    metrics = Metrics()
    metrics.watch_cache(graphql_app.answers)
    if redis is not None:
        metrics.cluster.watch_redis(redis)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        async with RegisterTortoise(app, config=tortoise_config, _enable_global_fallback=True):
            if check_migrations:
                pending = await pending_migrations(tortoise_config)
                if pending:
                    # Never create tables silently: the operator runs the migrations (DESIGN.md §6).
                    raise UnmigratedDatabase(
                        f"database has pending migrations {pending}: run `python -m api migrate` first"
                    )
            await changes.read()  # PostgreSQL: finds the tables' counters once, before the first request
            if settings.is_production:
                await refuse_development_leftovers()  # published demo secrets (api/services/leftovers.py)
            # The conversation's understanding (jieba's dictionary, the guides' index) takes a few seconds to build:
            # a served process builds it at start, in the background, so no one's first question waits for it.
            warming = asyncio.create_task(_warm_up_assistant()) if warm_up else None
            # PDFs are sealed in a child process (the sweep's and a first download's): the API process never loads
            # the sealing libraries (api/services/sealer.py); stopped after the sweep, at shutdown.
            async with _notice_dispatch(settings, wechat, clock, enabled=run_dispatcher), sealing_in_child(
                settings
            ), _certificate_pdfs(settings, clock, enabled=produce_certificates):
                try:
                    yield
                finally:
                    if warming is not None and not warming.done():
                        warming.cancel()
                    await broker.close()
                    await rate_limiter.close()
                    changes.close()
                    if redis is not None:
                        await redis.aclose()

    app = Starlette(
        routes=[
            # The hot path first: the router tries the routes in order.
            Route("/graphql", graphql_endpoint, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", graphql_app),  # subscriptions (graphql-transport-ws)
            Route("/healthz", healthz),
            Route(METRICS_PATH, metrics_endpoint(metrics, settings.metrics_token, production=settings.is_production)),
            Route(CLUSTER_PATH, metrics_endpoint(
                metrics, settings.metrics_token, production=settings.is_production, cluster=True,
            )),
            Route("/readyz", readyz),
            Route("/uploads", upload, methods=["POST"]),
            Route("/ingest/events", ingest_events, methods=["POST"]),
            Route("/certificates/{certificate_id}/pdf", download, methods=["GET"]),  # the key is read by the route
            Route("/verify", verify_page, methods=["GET"]),
            Route("/verify", verify_upload, methods=["POST"]),
            Route("/verify/{identifier}", verify_page, methods=["GET"]),
            Route("/exports/case-stats.csv", case_stats_csv, methods=["GET"]),
            Route("/exports/case-stats.xlsx", case_stats_xlsx, methods=["GET"]),
            Mount("/graphql", graphql_endpoint),
            *_graphiql_assets(settings),
            *dashboard_routes(),  # the supervisors' web pages (督察看板), cookie sessions
        ],
        lifespan=lifespan,
        # A database too busy to take a write answers 503 with Retry-After on the REST routes (api/busy.py).
        exception_handlers=busy_handlers(),
    )
    app.state.settings = settings
    app.state.clock = clock
    app.state.wechat = wechat
    app.state.broker = broker
    app.state.rate_limiter = rate_limiter
    app.state.changes = changes
    app.state.graphql = graphql_app
    app.state.metrics = metrics
    app.add_middleware(AuthMiddleware, settings=settings, changes=changes)
    app.add_middleware(RequestLogMiddleware, metrics=metrics)
    app.add_middleware(NoSniffMiddleware)  # outermost: also on the 401s of AuthMiddleware
    return app


def _graphiql_assets(settings: Settings) -> list[Mount]:
    """GraphiQL's vendored scripts and styles, where GraphiQL is served (api/graphiql.py)."""
    if not settings.graphiql_enabled:
        return []
    from starlette.staticfiles import StaticFiles

    from api.graphiql import PREFIX, STATIC_DIR

    return [Mount(PREFIX.rstrip("/"), StaticFiles(directory=STATIC_DIR))]


@contextlib.asynccontextmanager
async def _certificate_pdfs(settings: Settings, clock: Clock, *, enabled: bool):
    """Certificates issued by an approval get their sealed PDF within seconds, and one left without it by a crash is
    found by the sweep (api/services/certificates.py). Every instance may run it: producing a PDF is idempotent."""
    if not enabled:
        yield
        return
    if settings.redis_url:
        # Scaled mode: the arq workers seal the PDFs (their CPU, not the API's); this process only wakes them.
        from arq import create_pool
        from arq.connections import RedisSettings

        from api.services import certificates
        from notifications.worker import CERTIFICATES_JOB_ID, wake_workers as enqueue_wake_up

        pool = await create_pool(RedisSettings.from_dsn(settings.redis_url))
        pending: set[asyncio.Task] = set()

        def wake_workers() -> None:
            task = asyncio.get_running_loop().create_task(
                enqueue_wake_up(pool, "produce_certificates", CERTIFICATES_JOB_ID)
            )
            pending.add(task)
            task.add_done_callback(settled)

        def settled(task: asyncio.Task) -> None:
            pending.discard(task)
            if not task.cancelled() and task.exception() is not None:
                log.warning("could not wake the certificate workers; their sweep will find it",
                            exc_info=task.exception())

        unregister = certificates.register_waker(wake_workers)
        try:
            yield
        finally:
            unregister()
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)
            await pool.aclose()
        return
    from api.services.certificates import CertificatePdfRunner

    runner = CertificatePdfRunner(settings, clock, interval=settings.certificate_sweep_seconds)
    await runner.start()
    try:
        yield
    finally:
        await runner.stop()


@contextlib.asynccontextmanager
async def _notice_dispatch(settings: Settings, wechat: MiniProgram, clock: Clock, *, enabled: bool):
    """Who delivers the outbox (DESIGN.md §1): this process in embedded mode; the arq workers when Redis is there,
    which this process only wakes after a commit (the workers also sweep on a timer, so a lost wake-up costs seconds,
    never a notice)."""
    from notifications import dispatch

    if not enabled:
        yield
        return
    if settings.redis_url:
        from arq import create_pool
        from arq.connections import RedisSettings

        from notifications.worker import SWEEP_JOB_ID, wake_workers as enqueue_wake_up

        pool = await create_pool(RedisSettings.from_dsn(settings.redis_url))

        async def wake_workers() -> None:
            await enqueue_wake_up(pool, "sweep", SWEEP_JOB_ID)  # a crashed worker's job id does not block it

        unregister = dispatch.register_waker(wake_workers)
        try:
            yield
        finally:
            unregister()
            await pool.aclose()
        return
    from notifications.setup import build_dispatcher

    runner = dispatch.InProcessRunner(
        build_dispatcher(settings, wechat=wechat, clock=clock), interval=settings.notice_sweep_seconds
    )
    await runner.start()
    try:
        yield
    finally:
        await runner.stop()
