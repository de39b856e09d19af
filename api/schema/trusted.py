"""Trusted documents (persisted operations, issue #10 item 12).

The mini-program's operations are the files of ``graphql/operations/``; ``graphql/operations/manifest.json`` (Apollo's
persisted-query manifest format, written by ``python -m api export-manifest``) gives each its id: the sha256 of the
file's text. A request may name a document by id — Apollo's ``{"extensions": {"persistedQuery": {"version": 1,
"sha256Hash": …}}}`` or a plain ``{"id": …}`` — instead of sending its text. An unknown id answers
``PERSISTED_QUERY_NOT_FOUND`` as Apollo does.

In production only these documents run (plus the extra ones of ``JIANSHEN_GRAPHQL_EXTRA_DOCUMENTS``, for staff tools,
and, when introspection is enabled, documents that only introspect): a full text is accepted only when it hashes to a
known document. Development keeps free-form queries.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from graphql import GraphQLError, parse
from strawberry.extensions import SchemaExtension

from api.schema.gate import only_introspection

MANIFEST_FORMAT = "apollo-persisted-query-manifest"
REFUSED = "{kind} PersistedQueryRefused {{ __typename }}"  # never validated nor run (see on_operation)
_HERE = Path(__file__).resolve().parents[2] / "graphql" / "operations"


def operations_dir() -> Path:
    """The repository's graphql/operations/, or the working directory's (the Docker image installs the package and
    copies graphql/ to its working directory)."""
    return _HERE if (_HERE.parent / "schema.graphql").is_file() else Path.cwd() / "graphql" / "operations"


def document_id(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def build_manifest(directory: Path | None = None) -> dict:
    """The manifest of the mini-program's operations, from the .graphql files themselves."""
    from graphql import OperationDefinitionNode

    entries = []
    for path in sorted((directory or operations_dir()).glob("*.graphql")):
        text = path.read_text(encoding="utf-8")
        operation = next(d for d in parse(text).definitions if isinstance(d, OperationDefinitionNode))
        name = operation.name.value if operation.name else path.stem
        entries.append({"id": document_id(text), "name": name, "type": operation.operation.value, "body": text})
    return {"format": MANIFEST_FORMAT, "version": 1, "operations": entries}


def manifest_text(directory: Path | None = None) -> str:
    return json.dumps(build_manifest(directory), ensure_ascii=False, indent=2) + "\n"


@dataclass
class Registry:
    documents: dict[str, str] = field(default_factory=dict)  # id -> text

    @classmethod
    def load(cls, extra: Path | None = None, *, required: bool = False) -> "Registry":
        registry = cls()
        manifest = operations_dir() / "manifest.json"
        if manifest.is_file():
            registry.add_manifest(json.loads(manifest.read_text(encoding="utf-8")))
        elif required:
            raise RuntimeError(f"{manifest} is missing: production runs only the documents it lists")
        if extra is not None:
            paths = sorted(extra.glob("*.graphql")) + sorted(extra.glob("*.json")) if extra.is_dir() else [extra]
            for path in paths:
                text = path.read_text(encoding="utf-8")
                if path.suffix == ".json":
                    registry.add_manifest(json.loads(text))
                else:
                    registry.documents[document_id(text)] = text
        return registry

    def add_manifest(self, manifest: dict) -> None:
        for entry in manifest.get("operations", []):
            body = entry["body"]
            self.documents[document_id(body)] = body  # the id is recomputed: a wrong one in the file cannot widen


def _error(code: str, message: str) -> GraphQLError:
    return GraphQLError(message, extensions={"code": code})


def not_found() -> GraphQLError:
    return _error("PERSISTED_QUERY_NOT_FOUND", "PersistedQueryNotFound：未登记的查询，请更新小程序")


def requested_id(extensions: Any) -> str | None | GraphQLError:
    """The id a request names (Apollo's extension; ``{"id": …}`` arrives here as the same shape, see
    ``with_plain_id``), None when it names none, or the error of a malformed one."""
    if not isinstance(extensions, dict) or "persistedQuery" not in extensions:
        return None
    persisted = extensions["persistedQuery"]
    sha = persisted.get("sha256Hash") if isinstance(persisted, dict) else None
    if not isinstance(sha, str) or not sha or len(sha) > 128:
        return _error("INVALID_INPUT", "persistedQuery 需要 sha256Hash")
    return sha.lower()


def with_plain_id(data: Any, extensions: dict | None) -> dict | None:
    """A request body's plain ``"id"`` as Apollo's extension shape, so one path handles both."""
    if isinstance(data, dict) and isinstance(data.get("id"), str) and data.get("query") is None:
        if not (isinstance(extensions, dict) and "persistedQuery" in extensions):
            return {**(extensions or {}), "persistedQuery": {"version": 1, "sha256Hash": data["id"]}}
    return extensions


class TrustedDocuments(SchemaExtension):
    """Resolves a persisted id to its text and, when ``enforce`` (production), refuses any other document."""

    def __init__(self, registry: Registry, *, enforce: bool, allow_introspection: bool, max_tokens: int) -> None:
        super().__init__()
        self.registry = registry
        self.enforce = enforce
        self.allow_introspection = allow_introspection
        self.max_tokens = max_tokens

    def on_operation(self) -> Iterator[None]:
        context = self.execution_context
        error = self.admit(context)
        if error is not None:
            # Answered as a pre-execution error (over HTTP and WebSocket alike): a harmless stand-in document is
            # "parsed" and validation is skipped, so nothing of the refused request is parsed, validated or run.
            kinds = {getattr(kind, "value", kind) for kind in context.allowed_operations}
            context.query = REFUSED.format(kind="query" if "query" in kinds else "subscription")
            context._provided_operation_name = None
            context.pre_execution_errors = [error]
        yield

    def admit(self, context: Any) -> GraphQLError | None:
        wanted = requested_id(context.operation_extensions)
        if isinstance(wanted, GraphQLError):
            return wanted
        if wanted is not None:
            known = self.registry.documents.get(wanted)
            if context.query:
                if document_id(context.query) != wanted:
                    return _error("PERSISTED_QUERY_HASH_MISMATCH", "查询内容与 sha256Hash 不符")
            elif known is None:
                return not_found()
            else:
                context.query = known
        if not self.enforce or not context.query:
            return None
        if document_id(context.query) in self.registry.documents:
            return None
        if self.allow_introspection:
            try:
                if only_introspection(parse(context.query, max_tokens=self.max_tokens)):
                    return None
            except GraphQLError:
                pass
        return not_found()
