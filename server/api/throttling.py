"""The throttle (server/throttle.py) as resolvers call it: one line at the top of `createUser`
and `login`, one after a successful login. Over a limit, the field is refused with
RATE_LIMITED and `retryAfter`; nothing else of the resolver runs (no SQL, no password hash).
"""

from server.api.context import Info
from server.api.errors import rate_limited, throttle_unavailable
from server.throttle import Caller, StorageUnavailable, Throttled


def _caller(info: Info) -> Caller:
    operation = info.operation.name
    return info.context.auth.throttle.caller(
        info.context.request.scope, None if operation is None else operation.value
    )


async def count_login(info: Info, username: str) -> None:
    """Count this login attempt (per field, so aliases count one by one); raise when over."""
    try:
        await info.context.auth.throttle.login_attempt(username, _caller(info))
    except Throttled as throttled:
        raise rate_limited(throttled.retry_after) from None
    except StorageUnavailable:
        raise throttle_unavailable() from None


async def login_succeeded(info: Info, username: str) -> None:
    """The password was right: the username's failures are cleared."""
    try:
        await info.context.auth.throttle.login_succeeded(username, _caller(info))
    except StorageUnavailable:
        # The login itself succeeded and its token is committed; at worst the counters stay.
        return


async def count_sign_up(info: Info) -> None:
    """Count this `createUser` attempt against the client's address; raise when over."""
    try:
        await info.context.auth.throttle.sign_up_attempt(_caller(info))
    except Throttled as throttled:
        raise rate_limited(throttled.retry_after) from None
    except StorageUnavailable:
        raise throttle_unavailable() from None
