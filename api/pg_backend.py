"""PostgreSQL through asyncpg, as Tortoise's own backend, noting every statement a request sends (api/changes.py:
the response cache keeps an answer with the versions of the tables it read)."""

from __future__ import annotations

from tortoise.backends.asyncpg.client import AsyncpgDBClient, TransactionWrapper
from tortoise.backends.base.client import NestedTransactionContext, TransactionContext, TransactionContextPooled

from api.changes import NotesReads


class NotingTransactionWrapper(NotesReads, TransactionWrapper):
    def _in_transaction(self) -> TransactionContext:
        return NestedTransactionContext(NotingTransactionWrapper(self))


class NotingAsyncpgClient(NotesReads, AsyncpgDBClient):
    def _in_transaction(self) -> TransactionContext:
        return TransactionContextPooled(NotingTransactionWrapper(self), self._pool_init_lock)


client_class = NotingAsyncpgClient
