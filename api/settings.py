"""Settings of the service, read from the environment (prefix ``JIANSHEN_``).

The defaults are the *embedded* mode of DESIGN.md §1: one process, an SQLite file under ``var/``, no Redis, WeChat and
SMS in console mode. Production mode refuses to start with a development secret.
"""

from __future__ import annotations

from enum import Enum
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from notifications.rules import QuietHours
from notifications.templates import cached_templates

DEV_SECRET_KEY = "dev-only-secret-key-change-me-in-production-0123456789"
DEV_INGEST_SECRET_PREFIX = "dev-ingest-secret"
DEV_ESIGN_KEK = "dev-only-seal-key-encryption-key-change-me-0123456789"
DEV_PUBLIC_BASE_URL = "http://localhost:8000"  # links of a development process that is not `serve`
DEV_CHECK_CODE_SECRET = "dev-only-certificate-check-code-secret-0123456789"


class Environment(str, Enum):
    DEVELOPMENT = "development"
    PRODUCTION = "production"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="JIANSHEN_", env_file=None, extra="ignore")

    env: Environment = Field(Environment.DEVELOPMENT, description="`development` or `production`")
    database_url: str = Field(
        "sqlite://var/jianshen.sqlite3",
        description="Tortoise URL: `sqlite://path` or `postgres://user:pass@host:port/db`",
    )
    db_busy_timeout_ms: int = Field(
        5000, ge=10, le=60000, description="Longest a write waits for the database's write lock (SQLite busy timeout "
        "and the wait for this process's write connection; PostgreSQL `lock_timeout`), ms; past it the request "
        "answers SERVICE_BUSY (HTTP 503 with Retry-After on REST routes)",
    )
    redis_url: str | None = Field(None, description="Redis URL; unset = embedded mode (no Redis)")
    secret_key: str = Field(DEV_SECRET_KEY, description="HMAC key for access tokens (JWT HS256); ≥ 32 characters")
    access_token_ttl: int = Field(900, ge=60, le=86400, description="Lifetime of an access token, seconds")
    demo_token_ttl: int = Field(
        7 * 86400, ge=60, description="Lifetime of the tokens `make demo` writes (development mode only), seconds"
    )
    upload_dir: Path = Field(Path("var/uploads"), description="Where uploaded materials are stored")
    upload_max_bytes: int = Field(20 * 1024 * 1024, ge=1024, description="Largest accepted upload, bytes")
    ingest_max_skew: int = Field(
        300, ge=10, description="Largest clock difference accepted on a department system's signed request, seconds"
    )
    ingest_secret_grace_seconds: int = Field(
        86400, ge=0, le=30 * 86400, description="How long a department's previous ingest secret stays valid after "
        "`python -m api department secret CODE --rotate`, seconds (0 = it stops at once)",
    )
    ingest_max_batch: int = Field(500, ge=1, le=5000, description="Most events in one ingest request")
    event_max_future_skew: int = Field(
        300, ge=0, description="How far in the future a pushed event's own timestamp may lie, seconds"
    )
    calendar_cache_seconds: int = Field(
        60, ge=0, description="How long a process keeps the working-day calendar before re-reading it"
    )
    graphql_max_depth: int = Field(12, ge=3, description="Deepest GraphQL document accepted")
    graphql_max_aliases: int = Field(30, ge=1, description="Most aliases in one GraphQL document")
    graphql_max_tokens: int = Field(3000, ge=100, description="Most tokens in one GraphQL document")
    graphiql: bool | None = Field(None, description="Serve GraphiQL; default: on in development, off in production")
    # Issue #10: what one request may cost before anything runs (api/schema/gate.py, api/routes/limits.py).
    graphql_max_body_bytes: int = Field(
        1024 * 1024, ge=1024, description="Largest body of a POST to /graphql and largest WebSocket frame, bytes"
    )
    graphql_max_fields: int = Field(
        1000, ge=10, description="Most fields in one GraphQL document once its fragments are expanded"
    )
    graphql_max_field_pairs: int = Field(
        2000, ge=10, description="Most pairs of same-named fields the field-merging check of one document may compare"
    )
    graphql_max_cost: int = Field(
        100_000, ge=100, description="Highest estimated cost of one GraphQL operation (each field 1, times `first` "
        "of a connection or 10 for a plain list), checked before execution",
    )
    graphql_introspection: bool | None = Field(
        None, description="Answer schema introspection; default: on in development, off in production"
    )
    graphql_extra_documents: Path | None = Field(
        None, description="Production: a directory (or file) of extra .graphql documents staff tools may run besides "
        "the mini-program's graphql/operations/",
    )
    response_cache_mb: int = Field(
        64, ge=0, le=65536, description="Memory for answers to repeated GraphQL queries, kept while the database, the "
        "viewer and the date are unchanged (docs/PERFORMANCE.md), MiB per process; 0 = off",
    )
    metrics_token: str | None = Field(
        None, description="Bearer token Prometheus sends to `/metrics`; unset = open in development, off in production"
    )
    page_max: int = Field(100, ge=1, le=1000, description="Largest `first` accepted by a connection")
    log_level: str = Field("INFO", description="Log level")
    log_file: Path | None = Field(
        None, description="Also write the JSON log lines to this file (its directory is created); unset = console only",
    )
    console_log_level: str | None = Field(
        None, description="Level of the log lines written to the console (stderr); unset = `JIANSHEN_LOG_LEVEL`. "
        "`make demo` sets WARNING and a log file, so requests and notices go to var/log/ (issue #12)",
    )
    refresh_token_ttl: int = Field(
        30 * 86400, ge=3600, description="Lifetime of a refresh token, seconds (each refresh issues a new one)"
    )
    wechat_app_id: str | None = Field(None, description="Mini-program AppID; unset = console mode (development logins)")
    wechat_app_secret: str | None = Field(None, description="Mini-program AppSecret")
    wechat_api_base_url: str = Field("https://api.weixin.qq.com", description="Base URL of the WeChat API")
    wechat_timeout: float = Field(10.0, gt=0, description="Timeout of one WeChat API call, seconds")
    wechat_token_refresh_margin: int = Field(
        300, ge=0, le=3600, description="Refresh the WeChat access token this long before it expires, seconds"
    )
    staff_login_max_failures: int = Field(5, ge=1, description="Failed staff sign-ins that lock a username")
    staff_login_lockout_seconds: int = Field(900, ge=1, description="How long a locked username stays locked, seconds")

    # Notices (issue #5): SMS provider, retries, quiet hours, templates. Secrets default to empty.
    sms_provider: Literal["console", "aliyun", "tencent"] = Field(
        "console", description="SMS provider: `console` (logged, not sent), `aliyun` or `tencent`"
    )
    sms_sign_name: str = Field("", description="Approved SMS signature (签名), e.g. 珠海建审")
    sms_timeout: float = Field(5.0, gt=0, le=60, description="Timeout of one SMS provider call, seconds")
    aliyun_access_key_id: str = Field("", description="Aliyun AccessKey ID (SMS)")
    aliyun_access_key_secret: str = Field("", description="Aliyun AccessKey Secret (SMS)")
    aliyun_sms_endpoint: str = Field("dysmsapi.aliyuncs.com", description="Aliyun SMS endpoint host[:port]")
    aliyun_sms_protocol: Literal["https", "http"] = Field("https", description="Aliyun SMS protocol")
    tencent_secret_id: str = Field("", description="Tencent Cloud SecretId (SMS)")
    tencent_secret_key: str = Field("", description="Tencent Cloud SecretKey (SMS)")
    tencent_sms_sdk_app_id: str = Field("", description="Tencent SMS SdkAppId, e.g. 1400006666")
    tencent_sms_region: str = Field("ap-guangzhou", description="Tencent SMS region")
    tencent_sms_endpoint: str = Field("sms.tencentcloudapi.com", description="Tencent SMS endpoint host[:port]")
    tencent_sms_scheme: Literal["https", "http"] = Field("https", description="Tencent SMS scheme")
    sms_quiet_hours: str = Field(
        "22:00-08:00", description="No SMS in this daily window, Asia/Shanghai time (HH:MM-HH:MM; empty = none)"
    )
    notice_max_attempts: int = Field(8, ge=1, le=50, description="Attempts per notice and channel before it is dead")
    notice_retry_base_seconds: float = Field(30.0, gt=0, description="Back-off before the second attempt, seconds")
    notice_retry_max_seconds: float = Field(3600.0, gt=0, description="Longest back-off between attempts, seconds")
    notice_templates_file: Path | None = Field(
        None, description="Notice templates file (TOML); unset = notifications/templates.toml"
    )
    notice_lease_seconds: float = Field(
        120.0, ge=10, description="How long a dispatcher holds a notice it is sending before another may take it over"
    )
    notice_concurrency: int = Field(8, ge=1, le=100, description="Notices one dispatcher sends at once")
    notice_lookup_patience_seconds: float = Field(
        3600.0, ge=0, description="How long to keep asking a provider about a send cut short by a crash before "
        "sending again (a repeat is better than a loss), seconds",
    )
    notice_sweep_seconds: float = Field(
        5.0, gt=0, le=300, description="How often a dispatcher looks for due notices besides being woken, seconds"
    )
    worker_name: str | None = Field(
        None, description="Name of this notification worker in its health record (python -m notifications.worker "
        "--check); unset = the host name, i.e. one worker per container",
    )
    worker_health_seconds: float = Field(
        10.0, ge=1, le=300, description="How often a worker records that it is alive, seconds; its liveness check "
        "fails when no record is younger than three such periods",
    )
    wechat_long_term_subscription: bool = Field(
        False, description="The account has long-term subscribe messages (政务民生): no one-time consent needed"
    )

    # Suggestions, complaints and ratings (issue #6).
    conversation_message_max_chars: int = Field(
        500, ge=1, le=5000, description="Longest message a person may send to the conversation (characters)"
    )
    conversation_messages_per_minute: int = Field(
        20, ge=1, description="Messages one person may send to the conversation a minute (across API processes with Redis)"
    )
    complaint_daily_limit: int = Field(10, ge=1, description="Suggestions and complaints one person may file a day")
    complaint_reply_days: int = Field(10, ge=1, description="A complaint's reply is due within this many working days")
    complaint_warning_days: int = Field(2, ge=0, description="YELLOW when this few working days are left to reply")
    complaint_auto_close_days: int = Field(
        7, ge=1, description="A reply the filer leaves unanswered this many days closes the complaint"
    )
    rating_window_days: int = Field(30, ge=1, description="A matter may be rated this many days after its decision")
    rating_contact_days: int = Field(1, ge=1, description="A 差评's rater is contacted within this many working days")
    rating_rectify_days: int = Field(5, ge=1, description="A 差评 is rectified within this many working days")

    # Supervision statistics (issue #14).
    stats_max_days: int = Field(
        366, ge=7, le=3660,
        description="Longest period caseStats and its exports accept, in days (a year by default): bounds the work",
    )
    dashboard_session_seconds: int = Field(
        8 * 3600, ge=60, le=30 * 86400,
        description="A dashboard sign-in (its session cookie) lasts this long, seconds; then the page asks again",
    )

    # Electronic seals and certificates (issue #4, DOMAIN.md §6–7).
    esign_dir: Path = Field(
        Path("var/esign"), description="Embedded platform CA (created on first run) when no CA files are configured"
    )
    esign_ca_cert_file: Path | None = Field(None, description="Platform CA certificate (PEM), production")
    esign_ca_key_file: Path | None = Field(None, description="Platform CA private key (PKCS#8 PEM), production")
    esign_ca_key_password: str | None = Field(None, description="Password of the platform CA key file, if encrypted")
    esign_kek: str = Field(
        DEV_ESIGN_KEK, description="Key-encryption key of the seals' private keys (and the embedded CA's); ≥ 32 characters"
    )
    certificate_dir: Path = Field(Path("var/certificates"), description="Where the signed certificate PDFs are stored")
    cjk_glyph_dir: Path = Field(
        Path("var/esign/glyphs"),
        description="The certificate font's glyphs converted once per machine (`migrate` writes them, ~3 MB; read by "
        "esign.fonts from the same variable); missing: each process converts the glyphs it prints",
    )
    certificate_check_secret: str = Field(
        DEV_CHECK_CODE_SECRET, description="HMAC secret of the check codes printed on certificates; ≥ 32 characters"
    )
    public_base_url: str | None = Field(
        None, description="Public base URL of this service: QR codes and download links point here; required in "
        "production; unset in development = the address `python -m api serve` listens on (issue #12)",
    )
    certificate_download_ttl: int = Field(
        300, ge=10, le=86400, description="Lifetime of a certificate's signed download link, seconds"
    )
    public_verify_per_minute: int = Field(
        30, ge=1, description="Anonymous certificate checks one client address may make a minute, per endpoint"
    )
    forwarded_allow_ips: str = Field(
        "", description="Proxies whose X-Forwarded-For / X-Forwarded-Proto are believed (the client address of the "
        "per-address rate limits): comma-separated IPs or networks, `*` for any; empty = none, the connection's own "
        "address counts",
    )
    ws_init_timeout_seconds: float = Field(
        60.0, gt=0, le=600, description="How long a new /graphql WebSocket may take to send connection_init (which "
        "may carry its token) before it is closed with 4408, seconds",
    )
    verify_upload_max_bytes: int = Field(
        10 * 1024 * 1024, ge=1024, description="Largest PDF accepted by POST /verify, bytes"
    )
    certificate_sweep_seconds: float = Field(
        30.0, gt=0, le=3600, description="How often a process looks for certificates whose PDF is still to be made"
    )
    certificate_seal_timeout_seconds: float = Field(
        60.0, gt=0, le=3600, description="The longest the API process's sealing child may take over one certificate's "
        "PDF before it is killed (the certificate is retried by a later sweep or download), seconds",
    )
    certificate_sealer_idle_seconds: float = Field(
        10.0, ge=0, le=3600, description="How long the API process's sealing child is kept with nothing to seal "
        "before it exits (its memory goes back to the system; the next PDF starts a new one, ~1 s), seconds",
    )
    exchange_url: str | None = Field(
        None, description="The national data-sharing exchange database (前置库, postgres://…) `python -m api exchange "
        "push` writes to by default, and the arq workers push to on a timer (scaled mode); unset: no exchange"
    )
    exchange_push_seconds: float = Field(
        600.0, ge=60, le=86400, description="How often the arq workers push what changed to JIANSHEN_EXCHANGE_URL"
    )

    @property
    def is_production(self) -> bool:
        return self.env is Environment.PRODUCTION

    @property
    def base_url(self) -> str:
        """Where QR codes and links point. Unset (development only) and not given by ``serve``: the default port."""
        return (self.public_base_url or DEV_PUBLIC_BASE_URL).rstrip("/")

    def served_at(self, host: str, port: int) -> "Settings":
        """These settings with the public base URL of a development server listening on ``host:port`` (issue #12:
        links follow the port), unless the operator set one."""
        if self.public_base_url:
            return self
        if host in ("", "0.0.0.0", "::"):
            host = "127.0.0.1"
        host = f"[{host}]" if ":" in host else host
        return self.model_copy(update={"public_base_url": f"http://{host}:{port}"})

    @property
    def graphiql_enabled(self) -> bool:
        return (not self.is_production) if self.graphiql is None else self.graphiql

    @property
    def introspection_enabled(self) -> bool:
        return (not self.is_production) if self.graphql_introspection is None else self.graphql_introspection

    @model_validator(mode="after")
    def _refuse_dev_secrets_in_production(self) -> "Settings":
        if self.is_production:
            if self.secret_key == DEV_SECRET_KEY or len(self.secret_key) < 32:
                raise ValueError("JIANSHEN_SECRET_KEY must be set to a secret of at least 32 characters in production")
            if self.esign_kek == DEV_ESIGN_KEK:
                raise ValueError("JIANSHEN_ESIGN_KEK must be set to a secret of at least 32 characters in production")
            if self.certificate_check_secret == DEV_CHECK_CODE_SECRET:
                raise ValueError(
                    "JIANSHEN_CERTIFICATE_CHECK_SECRET must be set to a secret of at least 32 characters in production"
                )
            if not (self.public_base_url or "").strip():
                raise ValueError(
                    "JIANSHEN_PUBLIC_BASE_URL must be set in production (e.g. https://jianshen.example.gov.cn): the QR "
                    "codes printed on certificates point there for good"
                )
        if len(self.esign_kek.encode()) < 32 or len(self.certificate_check_secret.encode()) < 32:
            raise ValueError("JIANSHEN_ESIGN_KEK and JIANSHEN_CERTIFICATE_CHECK_SECRET need at least 32 characters")
        if self.esign_ca_key_file is not None and self.esign_ca_cert_file is None:
            raise ValueError("JIANSHEN_ESIGN_CA_KEY_FILE needs JIANSHEN_ESIGN_CA_CERT_FILE")
        if self.wechat_app_id and not self.wechat_app_secret:
            raise ValueError("JIANSHEN_WECHAT_APP_SECRET must be set with JIANSHEN_WECHAT_APP_ID")
        return self


    @model_validator(mode="after")
    def _check_notice_settings(self) -> "Settings":
        # A malformed window or templates file stops the start, instead of losing the first notices.
        QuietHours.parse(self.sms_quiet_hours)
        path = str(self.notice_templates_file) if self.notice_templates_file else None
        cached_templates(path, self.sms_provider if self.sms_provider != "console" else None)
        if self.is_production and self.sms_provider == "aliyun":
            if not (self.aliyun_access_key_id and self.aliyun_access_key_secret and self.sms_sign_name):
                raise ValueError(
                    "JIANSHEN_SMS_PROVIDER=aliyun needs JIANSHEN_ALIYUN_ACCESS_KEY_ID, JIANSHEN_ALIYUN_ACCESS_KEY_SECRET "
                    "and JIANSHEN_SMS_SIGN_NAME in production"
                )
        if self.is_production and self.sms_provider == "tencent":
            tencent = (self.tencent_secret_id, self.tencent_secret_key, self.tencent_sms_sdk_app_id, self.sms_sign_name)
            if not all(tencent):
                raise ValueError(
                    "JIANSHEN_SMS_PROVIDER=tencent needs JIANSHEN_TENCENT_SECRET_ID, JIANSHEN_TENCENT_SECRET_KEY, "
                    "JIANSHEN_TENCENT_SMS_SDK_APP_ID and JIANSHEN_SMS_SIGN_NAME in production"
                )
        return self

@lru_cache
def get_settings() -> Settings:
    return Settings()
