"""Real PostgreSQL and Redis servers for the test session (DESIGN.md §7).

The suite talks to real servers, started from the machine's binaries on free loopback ports in a
throw-away directory and stopped at the end. `make system-deps` installs the binaries. When
``JIANSHEN_TEST_POSTGRES_URL`` / ``JIANSHEN_TEST_REDIS_URL`` is set, that existing server is used
instead and nothing is started or stopped.

PostgreSQL refuses to run as root, so when the tests run as root the cluster belongs to the
``postgres`` system user and ``initdb``/``pg_ctl`` run through ``runuser``. Its directory is made
under /tmp with mode 0755 so that user can reach it (pytest's own tmp dirs are 0700 under root).

Typical use in a conftest::

    @pytest.fixture(scope="session")
    def postgres():
        require(postgres_available(), "PostgreSQL server binaries (initdb, pg_ctl)")
        server = PostgresServer.start()
        yield server
        server.stop()
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

__all__ = [
    "PostgresServer",
    "RedisServer",
    "ServerStartError",
    "find_pg_bin",
    "free_port",
    "make_base_dir",
    "port_is_open",
    "postgres_available",
    "redis_available",
    "require",
    "stop_process",
    "xdist_worker",
    "xdist_worker_index",
]

POSTGRES_URL_ENV = "JIANSHEN_TEST_POSTGRES_URL"
REDIS_URL_ENV = "JIANSHEN_TEST_REDIS_URL"
PG_SUPERUSER = "jianshen"
PG_SYSTEM_USER = "postgres"
HOST = "127.0.0.1"
START_TIMEOUT = 60.0
START_ATTEMPTS = 3  # a free port can be taken between probing it and the server binding it


class ServerStartError(RuntimeError):
    """A test server did not come up; the message carries the tail of its log."""


# --- helpers -------------------------------------------------------------------------------------


def _is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def require(binary_found: bool, what: str) -> None:
    """Skip the test when ``what`` is missing -- but fail loudly under CI, where skipping would hide it."""
    if binary_found:
        return
    message = f"{what} not found; run `make system-deps` (or set {POSTGRES_URL_ENV} / {REDIS_URL_ENV})"
    if _in_ci():
        pytest.fail(f"CI=true and {message}", pytrace=False)
    pytest.skip(message)


def find_pg_bin(name: str) -> str | None:
    """Path of a PostgreSQL program: PATH first, then Debian's /usr/lib/postgresql/<newest>/bin."""
    found = shutil.which(name)
    if found:
        return found

    def version(path: str) -> tuple[int, ...]:
        match = re.search(r"/postgresql/([\d.]+)/bin/", path)
        return tuple(int(part) for part in match.group(1).split(".") if part) if match else ()

    candidates = [
        path for path in glob.glob(f"/usr/lib/postgresql/*/bin/{name}") if os.access(path, os.X_OK)
    ]
    return max(candidates, key=version) if candidates else None


def postgres_available() -> bool:
    return bool(os.environ.get(POSTGRES_URL_ENV)) or bool(find_pg_bin("initdb") and find_pg_bin("pg_ctl"))


def redis_available() -> bool:
    return bool(os.environ.get(REDIS_URL_ENV)) or shutil.which("redis-server") is not None


def xdist_worker() -> str:
    """The pytest-xdist worker this process is ("gw0", "gw1", ...; `make test` runs several), "" outside xdist.

    Every worker runs its own session fixtures, so it starts its own PostgreSQL and Redis on free ports in directories
    of its own. Only an external server (the environment variables above) is shared: names on it carry the worker.
    """
    return os.environ.get("PYTEST_XDIST_WORKER", "")


def xdist_worker_index() -> int:
    worker = xdist_worker()
    return int(worker[2:]) if worker.startswith("gw") and worker[2:].isdigit() else 0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def port_is_open(port: int, host: str = HOST, timeout: float = 0.5) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=timeout):
        return True
    return False


def make_base_dir(prefix: str = "jianshen-test-") -> Path:
    """A fresh directory under /tmp that the ``postgres`` user can traverse (mode 0755)."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    path.chmod(0o755)
    return path


def _log_tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"(no log at {path}: {exc})"
    return "\n".join(text.splitlines()[-lines:]) or f"(empty log {path})"


def _traversable_by(user: str, path: Path) -> bool:
    result = subprocess.run(
        ["runuser", "-u", user, "--", "test", "-x", str(path)],
        capture_output=True,
    )
    return result.returncode == 0


# --- PostgreSQL ----------------------------------------------------------------------------------


class PostgresServer:
    """A throw-away PostgreSQL cluster, superuser ``jianshen``, trust auth on 127.0.0.1 only.

    ``url`` has no password (trust auth): ``postgres://jianshen@127.0.0.1:PORT/postgres``; both asyncpg and
    Tortoise accept it.
    """

    def __init__(self, url: str, *, directory: Path | None = None, owns_directory: bool = False) -> None:
        self.url = url
        self.directory = directory  # None for an external server
        self._owns_directory = owns_directory
        self._stopped = False
        self._pg_ctl = ""

    # construction

    @classmethod
    def start(cls, base_dir: Path | None = None) -> PostgresServer:
        """Start a new cluster (or wrap ``$JIANSHEN_TEST_POSTGRES_URL``). Blocks until it accepts connections."""
        external = os.environ.get(POSTGRES_URL_ENV)
        if external:
            return cls(external)

        initdb, pg_ctl = find_pg_bin("initdb"), find_pg_bin("pg_ctl")
        if not (initdb and pg_ctl):
            raise ServerStartError("PostgreSQL server binaries (initdb, pg_ctl) not found; run `make system-deps`")

        as_root = _is_root()
        if as_root:
            try:
                pg_uid, pg_gid = _ids_of(PG_SYSTEM_USER)
            except KeyError:
                raise ServerStartError(
                    f"running as root, PostgreSQL needs the {PG_SYSTEM_USER!r} system user to run as; "
                    "run `make system-deps` (the postgresql package creates it)"
                ) from None
        owns_directory = False
        if base_dir is not None:
            Path(base_dir).mkdir(parents=True, exist_ok=True)
        if base_dir is None or (as_root and not _traversable_by(PG_SYSTEM_USER, Path(base_dir))):
            # pytest's tmp dirs are 0700 under root: the postgres user could not reach a cluster in there.
            base_dir, owns_directory = make_base_dir("jianshen-pg-"), True
        directory = Path(base_dir) / "postgres"
        directory.mkdir(exist_ok=False)
        if as_root:
            os.chown(directory, pg_uid, pg_gid)

        server = cls("", directory=directory, owns_directory=owns_directory)
        server._pg_ctl = pg_ctl
        try:
            server._initdb(initdb)
            server._start_on_free_port()
        except BaseException:
            server._remove_directory()
            raise
        atexit.register(server.stop)
        return server

    @property
    def managed(self) -> bool:
        """False when the server is an external one from the environment (it is then never stopped)."""
        return self.directory is not None

    @property
    def port(self) -> int:
        return urlsplit(self.url).port or 5432

    @property
    def data_dir(self) -> Path:
        assert self.directory is not None
        return self.directory / "data"

    @property
    def log_path(self) -> Path:
        assert self.directory is not None
        return self.directory / "postgres.log"

    @property
    def socket_dir(self) -> Path:
        assert self.directory is not None
        return self.directory / "sock"

    def dsn_for(self, dbname: str) -> str:
        """The server's URL pointing at database ``dbname``."""
        parts = urlsplit(self.url)
        return urlunsplit(parts._replace(path="/" + dbname))

    async def create_database(self, dbname: str, *, template: str | None = None) -> str:
        """Create ``dbname`` (dropping an old one of that name) and return its URL."""
        import asyncpg

        quoted = '"' + dbname.replace('"', '""') + '"'
        connection = await asyncpg.connect(self.url)
        try:
            await connection.execute(f"DROP DATABASE IF EXISTS {quoted} WITH (FORCE)")
            clause = f' TEMPLATE "{template}"' if template else ""
            await connection.execute(f"CREATE DATABASE {quoted}{clause}")
        finally:
            await connection.close()
        return self.dsn_for(dbname)

    async def drop_database(self, dbname: str) -> None:
        import asyncpg

        quoted = '"' + dbname.replace('"', '""') + '"'
        connection = await asyncpg.connect(self.url)
        try:
            await connection.execute(f"DROP DATABASE IF EXISTS {quoted} WITH (FORCE)")
        finally:
            await connection.close()

    def stop(self) -> None:
        """Stop the cluster and remove its directory. Idempotent; does nothing for an external server."""
        if not self.managed or self._stopped:
            return
        self._stopped = True
        if self.data_dir.exists():
            self._run([self._pg_ctl, "-D", str(self.data_dir), "-m", "fast", "-w", "-t", "30", "stop"], check=False)
        self._remove_directory()

    # internals

    def _as_pg_user(self, cmd: list[str]) -> list[str]:
        return ["runuser", "-u", PG_SYSTEM_USER, "--", *cmd] if _is_root() else cmd

    def _run(self, cmd: list[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
        assert self.directory is not None
        result = subprocess.run(
            self._as_pg_user(cmd),
            cwd=self.directory,  # the postgres user may not be able to enter the caller's cwd
            capture_output=True,
            text=True,
            env={**os.environ, "LC_ALL": "C", "LANG": "C"},
        )
        if check and result.returncode != 0:
            raise ServerStartError(
                f"{' '.join(cmd)} exited {result.returncode}\n{result.stdout}{result.stderr}\n"
                f"--- {self.log_path} ---\n{_log_tail(self.log_path)}"
            )
        return result

    def _initdb(self, initdb: str) -> None:
        self._run(
            [
                initdb,
                "-D", str(self.data_dir),
                "-U", PG_SUPERUSER,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ]
        )
        self.socket_dir.mkdir()
        if _is_root():
            os.chown(self.socket_dir, *_ids_of(PG_SYSTEM_USER))
        settings = {
            "listen_addresses": f"'{HOST}'",
            "unix_socket_directories": f"'{self.socket_dir}'",
            "max_connections": "200",
            # Durability is worthless for a throw-away test cluster; speed is not.
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "logging_collector": "off",
        }
        with (self.data_dir / "postgresql.conf").open("a") as conf:
            conf.write("\n# jianshen test server\n")
            for key, value in settings.items():
                conf.write(f"{key} = {value}\n")

    def _start_on_free_port(self) -> None:
        last_error: ServerStartError | None = None
        for _ in range(START_ATTEMPTS):
            port = free_port()
            result = self._run(
                [
                    self._pg_ctl,
                    "-D", str(self.data_dir),
                    "-l", str(self.log_path),
                    "-o", f"-p {port}",
                    "-w",
                    "-t", str(int(START_TIMEOUT)),
                    "start",
                ],
                check=False,
            )
            if result.returncode == 0:
                self.url = f"postgres://{PG_SUPERUSER}@{HOST}:{port}/postgres"
                return
            last_error = ServerStartError(
                f"PostgreSQL did not start on port {port} (pg_ctl exited {result.returncode})\n"
                f"{result.stdout}{result.stderr}\n--- {self.log_path} ---\n{_log_tail(self.log_path)}"
            )
            if "already in use" not in _log_tail(self.log_path, 10):
                break
        assert last_error is not None
        raise last_error

    def _remove_directory(self) -> None:
        if self.directory is None:
            return
        target = self.directory.parent if self._owns_directory else self.directory
        shutil.rmtree(target, ignore_errors=True)

    def __repr__(self) -> str:
        return f"<PostgresServer {self.url} {'managed' if self.managed else 'external'}>"


def _ids_of(user: str) -> tuple[int, int]:
    import pwd

    entry = pwd.getpwnam(user)
    return entry.pw_uid, entry.pw_gid


# --- Redis ---------------------------------------------------------------------------------------


class RedisServer:
    """A throw-away redis-server without persistence, on 127.0.0.1. ``url`` is ``redis://127.0.0.1:PORT/0``.

    ``kill()`` and ``restart()`` exist for fault tests ("a Redis restart loses nothing", DESIGN.md §5); the
    restarted server listens on the same port, so clients reconnect to the same URL.
    """

    def __init__(
        self, url: str, *, directory: Path | None = None, owns_directory: bool = False, persistent: bool = False
    ) -> None:
        self.url = url
        self.persistent = persistent  # append-only file, as in docker/compose.yaml: a restart keeps the keys
        self.directory = directory  # None for an external server
        self._owns_directory = owns_directory
        self._process: subprocess.Popen[bytes] | None = None
        self._stopped = False

    @classmethod
    def start(cls, base_dir: Path | None = None, *, persistent: bool = False) -> RedisServer:
        """Start a new redis-server (or wrap ``$JIANSHEN_TEST_REDIS_URL``). Blocks until it answers PING.
        ``persistent``: with an append-only file (fsync every second), so ``restart()`` keeps what was written."""
        external = os.environ.get(REDIS_URL_ENV)
        if external:
            return cls(external)
        if shutil.which("redis-server") is None:
            raise ServerStartError("redis-server not found; run `make system-deps`")

        owns_directory = base_dir is None
        if base_dir is None:
            base_dir = make_base_dir("jianshen-redis-")
        directory = Path(base_dir) / "redis"
        directory.mkdir(parents=True, exist_ok=False)

        server = cls("", directory=directory, owns_directory=owns_directory, persistent=persistent)
        try:
            last_error: ServerStartError | None = None
            for _ in range(START_ATTEMPTS):
                port = free_port()
                server.url = f"redis://{HOST}:{port}/0"
                try:
                    server._spawn()
                    break
                except ServerStartError as exc:
                    last_error = exc
                    if "Address already in use" not in str(exc):
                        raise
            else:
                assert last_error is not None
                raise last_error
        except BaseException:
            server._remove_directory()
            raise
        atexit.register(server.stop)
        return server

    @property
    def managed(self) -> bool:
        return self.directory is not None

    @property
    def port(self) -> int:
        return urlsplit(self.url).port or 6379

    @property
    def log_path(self) -> Path:
        assert self.directory is not None
        return self.directory / "redis.log"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL) and remove its directory. Idempotent."""
        if not self.managed or self._stopped:
            return
        self._stopped = True
        self._terminate()
        self._remove_directory()

    def kill(self) -> None:
        """SIGKILL the server, as a crash would. It stays down until ``restart()``."""
        self._require_managed("kill")
        if self.running:
            assert self._process is not None
            self._process.send_signal(signal.SIGKILL)
            self._process.wait()

    def restart(self) -> None:
        """Stop the server if it runs and start it again on the same port (with an empty dataset unless
        ``persistent``)."""
        self._require_managed("restart")
        self._terminate()
        deadline = time.monotonic() + 10
        while True:
            try:
                self._spawn()
                return
            except ServerStartError as exc:
                # the old listening socket may linger for a moment after the process is gone
                if "Address already in use" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    # internals

    def _require_managed(self, action: str) -> None:
        if not self.managed:
            raise RuntimeError(f"cannot {action} an external Redis ({REDIS_URL_ENV}); skip fault tests there")
        if self._stopped:
            raise RuntimeError(f"cannot {action} a stopped RedisServer")

    def _spawn(self) -> None:
        assert self.directory is not None
        cmd = [
            "redis-server",
            "--port", str(self.port),
            "--bind", HOST,
            "--save", "",
            "--appendonly", "yes" if self.persistent else "no",
            "--dir", str(self.directory),
            "--daemonize", "no",
        ]
        with self.log_path.open("ab") as log:
            log.write(f"\n--- {time.strftime('%H:%M:%S')} {' '.join(cmd)}\n".encode())
            log.flush()
            self._process = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=self.directory
            )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                break
            if _redis_ping(self.port):
                return
            time.sleep(0.02)
        self._terminate()
        raise ServerStartError(
            f"redis-server did not answer PING on port {self.port}\n--- {self.log_path} ---\n{_log_tail(self.log_path)}"
        )

    def _terminate(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            stop_process(process)

    def _remove_directory(self) -> None:
        if self.directory is None:
            return
        shutil.rmtree(self.directory.parent if self._owns_directory else self.directory, ignore_errors=True)

    def __repr__(self) -> str:
        return f"<RedisServer {self.url} {'managed' if self.managed else 'external'}>"


def stop_process(process: subprocess.Popen, timeout: float = 10) -> None:
    """SIGTERM, then SIGKILL after ``timeout`` seconds; returns once the process is gone."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _redis_ping(port: int, host: str = HOST) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False
