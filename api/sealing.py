"""Sealing a certificate's PDF away from the API process: ``python -m api.sealing`` is the child that does it.

Rendering and sealing imports fpdf2, fontTools, pyHanko, asn1crypto and qrcode (~45 MB, never unloaded), keeps the
CJK face open (~15 MB) and leaves heap glibc keeps: a process that has sealed once stays ~80 MB above one that has
not (docs/PERFORMANCE.md, "Memory of an API process"). So an API process seals in a child (``ChildSealer``,
api/services/sealer.py) that it starts when there is something to seal, keeps while a backlog lasts and stops when
idle; its memory goes back to the system with it.

A *job* is plain data (the document's fields, the seal's stored credentials and image, where the platform CA is):
``seal_job`` turns it into the signed PDF, here in the child or in a worker thread of a process that has no child
(the arq workers, the demo loader). This module imports nothing heavy at the top: the API process imports it to
build jobs and never loads the sealing libraries.

The pipe protocol: frames of a 4-byte big-endian length then a pickle. The child writes ``("ready", pid)`` once its
libraries are loaded, then answers each job frame with ``("ok", pdf_bytes)`` or ``("error", traceback_text)``; it
exits when its stdin ends (the parent closed it, or died). It ignores SIGINT: its parent decides when it stops.
"""

from __future__ import annotations

import functools
import importlib
import os
import pickle
import signal
import struct
import sys
import traceback
import types
from typing import Any, BinaryIO

_HEADER = struct.Struct(">I")


def encode_frame(message: Any) -> bytes:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return _HEADER.pack(len(data)) + data


def _read_exactly(stream: BinaryIO, size: int) -> bytes | None:
    chunks, left = [], size
    while left:
        chunk = stream.read(left)
        if not chunk:
            return None
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _read_frame(stream: BinaryIO) -> Any | None:
    header = _read_exactly(stream, _HEADER.size)
    if header is None:
        return None
    data = _read_exactly(stream, _HEADER.unpack(header)[0])
    return None if data is None else pickle.loads(data)


@functools.lru_cache(maxsize=8)
def _platform_certificate(cert_file: str, key_file: str, key_password: str, directory: str, kek: str):
    from esign import PlatformCA

    return PlatformCA.open(cert_file, key_file, key_password, directory, kek).certificate


def seal_job(job: dict) -> bytes:
    """The signed PDF of a job (see ``api.services.certificates.sealing_job``)."""
    from esign import CertificateDocument, LocalSealSigner, SealCredentials, render_certificate, sign_pdf

    signer = LocalSealSigner(
        SealCredentials(**job["credentials"]), job["kek"], chain=[_platform_certificate(*job["platform"])]
    )
    rendered = render_certificate(CertificateDocument(**job["document"]))
    return sign_pdf(rendered.pdf, signer, seal_image_png=job["seal_image"], seal_box=rendered.seal_box)


# pyHanko imports its HTTP clients at import time — the RFC 3161 time stamper's, and the certificate validator's OCSP,
# CRL and certificate fetchers (pyhanko.sign.validation.ades imports them for pdf_signer) — and with them aiohttp,
# yarl, multidict, … (~11 MB of the child's RSS, ~100 modules). The child signs with a local key, asks no time stamp
# authority and validates nothing, so it loads pyHanko with those two modules replaced by stand-ins whose classes
# refuse to be made: should a future pyHanko need them for sealing, the job fails loudly (and the tests with it).
_NETWORK_CLIENTS = {
    "pyhanko.sign.timestamps.aiohttp_client": "HTTPTimeStamper",
    "pyhanko_certvalidator.fetchers.aiohttp_fetchers": "AIOHttpFetcherBackend",
}


def _without_network_clients() -> None:
    """Stand-ins for pyHanko's aiohttp modules, before pyHanko is imported (the child only: it fetches nothing)."""
    for module_name, class_name in _NETWORK_CLIENTS.items():
        if module_name in sys.modules:
            continue

        def refuse(*args, _name=class_name, **kwargs):
            raise RuntimeError(f"{_name}: the sealing child makes no network requests (api/sealing.py)")

        module = types.ModuleType(module_name, "A stand-in: the sealing child makes no network requests.")
        setattr(module, class_name, type(class_name, (), {"__init__": refuse, "__module__": module_name}))
        sys.modules[module_name] = module


def main() -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    requests, answers = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # the pipe carries frames only; a stray print goes to the server's log
    # The libraries are loaded before "ready", so that a job's time is its own; the font is opened by the first job
    # (whatever esign.fonts needs of it: the face, or a machine's stored glyphs).
    _without_network_clients()
    importlib.import_module("esign")
    answers.write(encode_frame(("ready", os.getpid())))
    answers.flush()
    while (job := _read_frame(requests)) is not None:
        try:
            answer = ("ok", seal_job(job))
        except Exception:  # noqa: BLE001 - the parent logs it and retries the certificate later
            answer = ("error", traceback.format_exc())
        try:
            answers.write(encode_frame(answer))
            answers.flush()
        except BrokenPipeError:
            return 0  # the parent went away
    return 0


if __name__ == "__main__":
    sys.exit(main())
