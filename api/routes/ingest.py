"""``POST /ingest/events``: a department system pushes a batch of BLZT events (wire format: docs/INGEST.md).

Whole-request refusals (size, signature, shape) answer an HTTP error and apply nothing; otherwise the answer is 200
with one result per event, in the order sent (api/services/ingest.py).
"""

from __future__ import annotations

import json

from starlette.requests import Request
from starlette.responses import JSONResponse
from tortoise.transactions import in_transaction

from api.routes.limits import BodyTooLarge, declared_too_large, limited
from api.services import conversation
from api.services.certificates import files_dir as certificate_files_dir
from api.services.ingest import IngestRefused, apply_event, authenticate

MAX_BODY = 5 * 1024 * 1024
DRY_RUN_VALUES = {"1": True, "true": True, "0": False, "false": False, "": False}


def refused(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


async def ingest_events(request: Request) -> JSONResponse:
    settings = request.app.state.settings
    now = request.app.state.clock()
    if declared_too_large(request, MAX_BODY):
        return refused(413, "BODY_TOO_LARGE", f"请求体不能超过{MAX_BODY // (1024 * 1024)}MB")
    try:
        body = await limited(request, MAX_BODY).body()
    except BodyTooLarge:
        return refused(413, "BODY_TOO_LARGE", f"请求体不能超过{MAX_BODY // (1024 * 1024)}MB")
    try:
        department = await authenticate(
            request.headers.get("x-jianshen-department"),
            request.headers.get("x-jianshen-timestamp"),
            request.headers.get("x-jianshen-signature"),
            body,
            now=now,
            max_skew=settings.ingest_max_skew,
        )
    except IngestRefused as exc:
        return refused(exc.status, exc.code, exc.message)
    dry_run = request.query_params.get("dryRun", "0").strip().lower()
    if dry_run not in DRY_RUN_VALUES:
        return refused(400, "BAD_REQUEST", "dryRun 只能为 1/true 或 0/false")
    dry_run = DRY_RUN_VALUES[dry_run]
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError; RecursionError: absurdly deep nesting
        return refused(400, "BAD_JSON", "请求体不是有效的 JSON（UTF-8 编码）")
    events = payload.get("events") if isinstance(payload, dict) else None
    if not isinstance(events, list) or not events:
        return refused(400, "BAD_REQUEST", "请求体须为 {\"events\": [...]}，且至少包含一个事件")
    if len(events) > settings.ingest_max_batch:
        return refused(413, "BATCH_TOO_LARGE", f"一次最多推送{settings.ingest_max_batch}个事件")
    if dry_run:
        return JSONResponse({"dryRun": True, "results": await _dry_run(department, events, now)})
    # In order: events of one case in one batch apply one after the other, each in its own transaction.
    results = []
    certificate_files_dir.set(settings.certificate_dir)  # a department's certificate PDF is kept there
    conversation.begin_publishing()  # the applicants' SYSTEM messages go live after the commits (issue #11)
    try:
        for index, event in enumerate(events):
            result = await apply_event(department, event, now=now)
            results.append({"index": index, **result.as_json()})
    finally:
        await conversation.publish_pending(request.app.state.broker)
    return JSONResponse({"results": results})


class _RollBack(Exception):
    """Ends a dry run: everything the batch wrote is rolled back."""


async def _dry_run(department, events: list, now) -> list[dict]:
    """The batch applied exactly as for real, inside one transaction that is then rolled back (each event's own
    transaction is a savepoint of it), so the results are what a real run would answer and nothing is kept.
    No message is published: the conversation's live publishing was not begun for this request."""
    results: list[dict] = []
    keeping = certificate_files_dir.set(None)  # a department's certificate PDF is not written for a dry run
    try:
        async with in_transaction():
            for index, event in enumerate(events):
                result = await apply_event(department, event, now=now)
                results.append({"index": index, **result.as_json()})
            raise _RollBack
    except _RollBack:
        pass
    finally:
        certificate_files_dir.reset(keeping)
    return results
