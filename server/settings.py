"""Typed configuration, read once at the edge (environment, then CLI flags).

`DATABASE_URL` accepts the URLs people already have — `sqlite:///file.db`, `postgresql://…`,
`mysql://…` or `mariadb://…` — and picks the async driver itself; an explicit SQLAlchemy async URL
(`postgresql+asyncpg://…`) is used as given.
"""

from datetime import timedelta
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from server.events import parse_networks

DEFAULT_SQLITE_FILE = "inkgraph.db"

# Plain scheme -> async driver. Keys are what users write; values are what SQLAlchemy needs.
_ASYNC_DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "postgresql": "postgresql+asyncpg",
    "postgres": "postgresql+asyncpg",
    "mysql": "mysql+asyncmy",
    "mariadb": "mysql+asyncmy",
}


# The settings that bound one GraphQL request (API.md "Limits and protection"): 0 turns each off.
QUERY_LIMITS = (
    "graphql_max_characters",
    "graphql_max_tokens",
    "graphql_max_directives",
    "graphql_max_aliases",
    "graphql_max_depth",
    "graphql_max_nodes",
    "graphql_max_cost",
    "graphql_max_node_ids",
    "graphql_max_input_list",
    "graphql_execution_timeout",
)


class Settings(BaseSettings):
    """Server configuration.

    Every field is read from the environment variable of the same name (upper case); the CLI's
    `--database-url`, `--host` and `--port` override it. Nothing here is read at import time:
    callers build `Settings()` (or `Settings(database_url=…)` in tests) and pass it down.
    """

    model_config = SettingsConfigDict(env_prefix="", extra="ignore", frozen=True)

    database_url: str = Field(default=f"sqlite:///{DEFAULT_SQLITE_FILE}")
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    log_sql: bool = False
    # uvicorn's line per request. Off by default: the reverse proxy in front logs requests, the
    # operator's log (server/events.py) logs what went wrong, and a line costs ~40 µs of the
    # event loop's time, about 4 % of a small query.
    log_access: bool = False
    # Pooled database connections kept open, and extra ones allowed under a burst. The pool
    # must cover the requests in flight: past it, each extra connection is opened and closed
    # per request (make bench saw 200+ new PostgreSQL sessions in 5 s at the old default 5).
    db_pool_size: int = Field(default=20, ge=1)
    db_max_overflow: int = Field(default=10, ge=0)
    # PostgreSQL: the loaders' cached statements run straight on asyncpg, SQLAlchemy only
    # compiling them (loaders/rawpg.py). Off sends every statement through SQLAlchemy.
    db_raw_reads: bool = True
    # Bearer tokens expire this long after login (seconds, or ISO 8601 like P30D).
    token_ttl: timedelta = timedelta(days=30)
    # argon2id cost: RFC 9106's 64 MiB and 3 passes, in one lane. More lanes run in more
    # threads and take cores from the event loop (make bench: a login burst cut other requests
    # to 40% with 4 lanes, 65% with 1); the lane count is not what makes a hash hard to crack.
    argon2_time_cost: int = Field(default=3, ge=1)
    argon2_memory_kib: int = Field(default=65536, ge=8)
    argon2_parallelism: int = Field(default=1, ge=1)
    # Password hashes computed at once, in threads; 0 = all cores but one (at least one), so
    # a burst of logins never takes the core the event loop serves other requests on.
    password_hash_workers: int = Field(default=0, ge=0)
    # --- database faults ---
    # Seconds; 0 turns a limit off. Connecting (a host that swallows packets would otherwise
    # hold a request for a minute or more), waiting for a pooled connection under a burst,
    # and one SQL statement (PostgreSQL statement_timeout, MariaDB max_statement_time, SQLite
    # an interrupt). The first two are answered SERVICE_UNAVAILABLE, the last TIMEOUT.
    db_connect_timeout: float = Field(default=5.0, ge=0)
    db_pool_timeout: float = Field(default=10.0, ge=0)
    db_statement_timeout: float = Field(default=8.0, ge=0)

    # --- HTTP limits (API.md "HTTP limits", "Browsers and CSRF"); 0 turns a limit off ---
    # Enforced by `inkgraph serve` itself (server/httplimits.py, server/bodylimit.py): no
    # reverse proxy is assumed in front.
    http_max_body_bytes: int = Field(default=1_048_576, ge=0)
    http_max_header_bytes: int = Field(default=16_384, ge=0)
    # Seconds from connection open (or the next request's first byte) to the end of the head.
    http_header_timeout: float = Field(default=10.0, ge=0)
    # Seconds from the end of the head to the last body byte: a total, so a drip is cut off.
    http_body_timeout: float = Field(default=30.0, ge=0)
    http_keepalive_timeout: float = Field(default=5.0, ge=0)
    # Open connections per process; beyond it a connection is answered 503 with Retry-After.
    http_max_connections: int = Field(default=1000, ge=0)
    # Exact origins allowed cross-origin requests (comma-separated); none by default.
    cors_allow_origins: str = ""

    @field_validator("token_ttl", mode="before")
    @classmethod
    def _seconds_or_iso_duration(cls, value: object) -> object:
        # pydantic reads "60" from the environment as an ISO 8601 attempt and fails; the
        # documented form is plain seconds (TOKEN_TTL=2592000), so numbers are seconds.
        if isinstance(value, str):
            try:
                return float(value.strip())
            except ValueError:
                return value.strip()
        return value

    def without_query_limits(self) -> "Settings":
        """These settings with every query limit, argument cap and the execution timeout off
        (0): for benchmarks and tests whose documents are about something else. Never for a
        public endpoint."""
        return self.model_copy(update=dict.fromkeys(QUERY_LIMITS, 0))

    def cors_origins(self) -> list[str]:
        """`cors_allow_origins` as a list of exact origins (empty: no CORS at all)."""
        return [origin.strip() for origin in self.cors_allow_origins.split(",") if origin.strip()]

    # --- compiled execution plan ---
    # Answer queries through a plan compiled per document (server/api/plan.py); false runs
    # every operation through plain graphql-core (same answers, more CPU per request).
    graphql_compiled_plan: bool = True

    # --- query limits and execution (API.md "Limits and protection"); 0 turns a limit off ---
    graphql_max_characters: int = Field(default=15_000, ge=0)
    graphql_max_tokens: int = Field(default=1_000, ge=0)
    graphql_max_directives: int = Field(default=50, ge=0)
    graphql_max_aliases: int = Field(default=15, ge=0)
    graphql_max_depth: int = Field(default=12, ge=0)
    graphql_max_nodes: int = Field(default=20_000, ge=0)
    graphql_max_cost: int = Field(default=50_000, ge=0)
    # Argument caps (answered BAD_USER_INPUT): IDs in nodes(ids:), items in any input list.
    graphql_max_node_ids: int = Field(default=100, ge=0)
    graphql_max_input_list: int = Field(default=250, ge=0)
    # Seconds one GraphQL request may run; its statements in flight are cancelled after.
    graphql_execution_timeout: float = Field(default=10.0, ge=0)
    # Off: __schema/__type fail validation and GraphiQL is not served.
    graphql_introspection: bool = True
    # "Did you mean …" in error messages (fields, arguments, enum values, types): development.
    graphql_suggestions: bool = False

    # --- login and sign-up throttling (shared/API.md "Login and sign-up throttling") ---
    # Failed logins per username (case-folded) and per client address in one LOGIN_WINDOW,
    # and sign-up attempts per address in one SIGNUP_WINDOW (seconds); 0 turns a limit off.
    login_max_failures_per_username: int = Field(default=10, ge=0)
    login_max_failures_per_address: int = Field(default=100, ge=0)
    login_window: int = Field(default=900, ge=1)
    signup_max_per_address: int = Field(default=20, ge=0)
    signup_window: int = Field(default=3600, ge=1)
    # Where the counters live: `memory://` (this process only) or `redis://host:port/db`, which
    # several replicas share so the limits hold per deployment. Keys start with the prefix.
    throttle_storage_url: str = "memory://"
    throttle_key_prefix: str = Field(default="inkgraph", min_length=1)
    # Proxies whose X-Forwarded-For is believed, comma-separated addresses or networks
    # ("10.0.0.0/8, 127.0.0.1"); by default the client address is the TCP peer.
    trusted_proxies: str = ""

    @field_validator("throttle_storage_url")
    @classmethod
    def _throttle_storage(cls, value: str) -> str:
        throttle_storage_uri(value)
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: str) -> str:
        try:
            parse_networks(value)
        except ValueError as error:
            raise ValueError(f"not an address or network: {error}") from None
        return value

    @field_validator("database_url")
    @classmethod
    def _supported_url(cls, value: str) -> str:
        # Refuse a typo here, where it names the setting, not at the first connection.
        to_async_url(value)
        return value

    def async_url(self) -> URL:
        """The SQLAlchemy async URL for `database_url` (a relative SQLite path stays relative
        to the working directory)."""
        return to_async_url(self.database_url)


def to_async_url(raw: str) -> URL:
    """Map a plain database URL onto the async driver inkgraph uses for that backend.

    >>> to_async_url("postgresql://u@h/db").drivername
    'postgresql+asyncpg'
    """
    try:
        url = make_url(raw)
    except ArgumentError:
        raise ValueError("not a database URL; expected e.g. sqlite:///inkgraph.db") from None
    backend, _, driver = url.drivername.partition("+")
    if driver:
        return url
    if backend not in _ASYNC_DRIVERS:
        raise ValueError(
            f"unsupported database URL scheme {backend!r}; "
            "use sqlite:///, postgresql:// or mysql:// (mariadb://)"
        )
    url = url.set(drivername=_ASYNC_DRIVERS[backend])
    if backend in {"mysql", "mariadb"} and "charset" not in url.query:
        url = url.update_query_dict({"charset": "utf8mb4"})
    return url


def sqlite_path(url: URL) -> Path | None:
    """The file behind a SQLite URL, or None for other backends and in-memory databases."""
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return Path(url.database)


# Storage URLs operators write -> the async `limits` storage scheme for them.
_THROTTLE_SCHEMES = {
    "memory": "async+memory",
    "redis": "async+redis",
    "rediss": "async+rediss",
    "redis+unix": "async+redis+unix",
}


def throttle_storage_uri(raw: str) -> str:
    """The `limits` async storage URI for a throttle storage URL.

    >>> throttle_storage_uri("redis://127.0.0.1:6379/0")
    'async+redis://127.0.0.1:6379/0'
    """
    scheme, separator, rest = raw.partition("://")
    scheme = scheme.lower().removeprefix("async+")
    if not separator or scheme not in _THROTTLE_SCHEMES:
        raise ValueError("unsupported throttle storage; use memory:// or redis://host:port/db")
    return f"{_THROTTLE_SCHEMES[scheme]}://{rest}"
