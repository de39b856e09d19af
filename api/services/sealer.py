"""The API process's sealing child (api/sealing.py): started when a certificate is to be sealed, kept while a backlog
lasts, stopped after ``idle`` seconds without a job — so the sealing libraries' memory is the child's, and goes back
to the system with it.

One job at a time (a lock, first come first served): a download that must make its PDF waits for at most the
certificate under way, never for a whole batch of the sweep, which hands the child one certificate at a time. A child
that does not answer a job within ``timeout`` seconds is killed, as is one that dies: the job raises
``SealingFailed`` (the caller logs it; the certificate keeps no PDF and a later sweep or download retries it with a
new child). Every child is waited for (no zombies); ``close`` (the server's shutdown) stops it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pickle
import sys
from pathlib import Path

from api.sealing import encode_frame

log = logging.getLogger("jianshen.certificates")

START_TIMEOUT = 120.0  # importing the libraries and opening the face: seconds on a loaded machine, never minutes
STOP_GRACE = 5.0
_PACKAGE_ROOT = str(Path(__file__).resolve().parent.parent.parent)
_HEADER_SIZE = 4


class SealingFailed(Exception):
    """The child could not seal this job (it raised, died or hung); the certificate is retried later."""


class ChildSealer:
    def __init__(self, *, timeout: float, idle: float) -> None:
        self.timeout, self.idle = timeout, idle
        self._lock = asyncio.Lock()
        self._process: asyncio.subprocess.Process | None = None
        self._idle_timer: asyncio.TimerHandle | None = None
        self._idle_task: asyncio.Task | None = None
        self._closed = False

    @property
    def pid(self) -> int | None:
        """The running child's process id (None between children)."""
        process = self._process
        return process.pid if process is not None and process.returncode is None else None

    async def seal(self, job: dict) -> bytes:
        async with self._lock:
            if self._closed:
                raise SealingFailed("the server is stopping")
            self._cancel_idle_timer()
            try:
                process = await self._running()
                try:
                    kind, value = await asyncio.wait_for(self._exchange(process, job), self.timeout)
                except asyncio.TimeoutError:
                    await self._kill(f"no answer within {self.timeout:g} s")
                    raise SealingFailed(f"the sealing child did not answer within {self.timeout:g} s") from None
                except (ConnectionError, EOFError, asyncio.IncompleteReadError) as exc:
                    await self._kill("it went away")
                    raise SealingFailed(f"the sealing child exited ({exc!r})") from None
                except BaseException:  # cancelled mid-job: the pipe is out of step, start afresh next time
                    await asyncio.shield(self._kill("the job was cancelled"))
                    raise
            finally:
                self._start_idle_timer()
        if kind != "ok":
            raise SealingFailed(f"the sealing child raised:\n{value}")
        return value

    async def close(self) -> None:
        """Stop the child (the server's shutdown): a job under way gets ``STOP_GRACE`` seconds to finish."""
        self._closed = True
        self._cancel_idle_timer()
        try:
            await asyncio.wait_for(self._lock.acquire(), STOP_GRACE)
        except asyncio.TimeoutError:
            await self._kill("the server is stopping")
            return
        try:
            await self._stop()
        finally:
            self._lock.release()
        if self._idle_task is not None:
            await asyncio.gather(self._idle_task, return_exceptions=True)

    # -- the child ----------------------------------------------------------------------------------------------------

    async def _running(self) -> asyncio.subprocess.Process:
        process = self._process
        if process is not None and process.returncode is None:
            return process
        if process is not None:  # died between jobs (killed, crashed): already reaped by the child watcher
            log.error("the sealing child had exited", extra={"fields": {"pid": process.pid, "code": process.returncode}})
            self._process = None
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (_PACKAGE_ROOT, os.environ.get("PYTHONPATH")) if p)}
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "api.sealing",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, env=env,
        )
        self._process = process
        try:
            kind, _ = await asyncio.wait_for(_read_frame(process.stdout), START_TIMEOUT)
        except (asyncio.TimeoutError, EOFError, asyncio.IncompleteReadError, ConnectionError):
            await self._kill("it did not start")
            raise SealingFailed("the sealing child did not start") from None
        except BaseException:
            await asyncio.shield(self._kill("its start was cancelled"))
            raise
        log.info("sealing child started", extra={"fields": {"pid": process.pid}})
        return process

    async def _exchange(self, process: asyncio.subprocess.Process, job: dict):
        process.stdin.write(encode_frame(job))
        await process.stdin.drain()
        return await _read_frame(process.stdout)

    async def _stop(self) -> None:
        """End the child politely (its stdin closed: it exits after its job), killing it if it lingers."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.returncode is None:
            with contextlib.suppress(ConnectionError):
                process.stdin.close()
            try:
                await asyncio.wait_for(process.wait(), STOP_GRACE)
            except asyncio.TimeoutError:
                process.kill()
                await process.wait()
        log.info("sealing child stopped", extra={"fields": {"pid": process.pid}})

    async def _kill(self, reason: str) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
        await process.wait()  # reaped: no zombie
        log.error(
            "sealing child killed: %s", reason, extra={"fields": {"pid": process.pid, "code": process.returncode}}
        )

    # -- idle -----------------------------------------------------------------------------------------------------

    def _start_idle_timer(self) -> None:
        if self._process is not None and not self._closed:
            self._idle_timer = asyncio.get_running_loop().call_later(self.idle, self._idle_elapsed)

    def _cancel_idle_timer(self) -> None:
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None

    def _idle_elapsed(self) -> None:
        self._idle_timer = None
        self._idle_task = asyncio.get_running_loop().create_task(self._stop_if_idle(), name="sealing-child-idle")

    async def _stop_if_idle(self) -> None:
        async with self._lock:
            if self._idle_timer is None:  # no job came between the timer and the lock
                await self._stop()


async def _read_frame(stream: asyncio.StreamReader):
    header = await stream.readexactly(_HEADER_SIZE)
    data = await stream.readexactly(int.from_bytes(header, "big"))
    return pickle.loads(data)
