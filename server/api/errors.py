"""Errors clients see, and the codes they carry in `extensions.code`.

    BAD_USER_INPUT             an argument the caller got wrong: a malformed or wrong-type global
                               ID, a cursor that is not ours or belongs to another field or orderBy,
                               first/last out of 0–100 or both given, user(id:) with username:,
                               a DateTime without an offset, a value of the wrong type
    GRAPHQL_PARSE_FAILED       the document is not GraphQL
    GRAPHQL_VALIDATION_FAILED  the document does not fit the schema (unknown field, …)
    UNAUTHENTICATED            a mutation that needs a user got no token, or a bad, expired or
                               revoked one; the field is null and nothing was written
    FORBIDDEN                  a valid token whose user may not do this (someone else's post,
                               an article without the editor right); nothing was written
    QUERY_TOO_COMPLEX          the document is over a query limit (characters, tokens, directives,
                               aliases, depth, nodes, cost); `extensions` carry `limit`, `max`
                               and `actual`; nothing ran
    RATE_LIMITED               a login or sign-up over its throttle (server/throttle.py); no
                               password was checked; `extensions.retryAfter` is the number of
                               seconds until the window has room again
    SERVICE_UNAVAILABLE        a dependency is unreachable: the database could not be reached or
                               the connection broke (no connection, connect or pool timeout), or
                               the throttle's shared storage did not answer; nothing was written
                               — except when the connection broke during COMMIT: then the
                               write's outcome is unknown (`extensions.outcomeUnknown: true`),
                               re-read before retrying
    TIMEOUT                    a database statement ran past DB_STATEMENT_TIMEOUT and was
                               cancelled, or the request ran past GRAPHQL_EXECUTION_TIMEOUT (its
                               statement in flight cancelled, `data` null); a mutation's
                               transaction was rolled back — unless its COMMIT had been sent:
                               then `extensions.outcomeUnknown: true`, re-read before retrying
    INTERNAL_SERVER_ERROR      anything unexpected; the message is always "Unexpected error."
                               and the details (traceback, SQL) go to the server log only, as
                               `unexpected error client=… operation=… request=… path=…` (ERROR)

Requests that are not GraphQL requests at all (bad JSON, no query) get HTTP 400 before any of
this; a mutation sent over GET gets HTTP 405.
"""

import logging
import re
from collections.abc import Iterator
from typing import Any

from graphql import GraphQLError
from strawberry.extensions import SchemaExtension

from loaders import DatabaseUnavailable, StatementTimeout
from server.api.faults import who
from server.events import EventLog

logger = logging.getLogger("inkgraph.errors")
# Tracebacks of unexpected errors, folded per client like the other event lines: a request that
# trips a bug, sent in a loop, costs the log one traceback per 10 s (server/events.py).
_unexpected = EventLog(target=logger)

BAD_USER_INPUT = "BAD_USER_INPUT"
GRAPHQL_PARSE_FAILED = "GRAPHQL_PARSE_FAILED"
GRAPHQL_VALIDATION_FAILED = "GRAPHQL_VALIDATION_FAILED"
INTERNAL_SERVER_ERROR = "INTERNAL_SERVER_ERROR"
QUERY_TOO_COMPLEX = "QUERY_TOO_COMPLEX"
RATE_LIMITED = "RATE_LIMITED"
SERVICE_UNAVAILABLE = "SERVICE_UNAVAILABLE"
TIMEOUT = "TIMEOUT"
UNEXPECTED_MESSAGE = "Unexpected error."

# graphql-core's messages for values that do not coerce to the argument's type: these are the
# caller's input, so they get BAD_USER_INPUT like the checks our resolvers make.
_INPUT_VALUE_MESSAGE = re.compile(
    r"^(Expected value of (non-null )?type|Variable '\$\w+' (got|has) invalid value|"
    r"Variable '\$\w+' of (required|non-null) type|Int cannot represent|"
    r"String cannot represent|Boolean cannot represent|ID cannot represent|"
    r"Float cannot represent|Value '.*' does not exist in|Enum '.*' cannot represent)"
)


class UserInputError(ValueError):
    """Raised by scalars and helpers for input the caller got wrong."""


def unauthenticated() -> GraphQLError:
    return GraphQLError(
        "Sign in first: send `Authorization: Bearer <token>` with a valid token.",
        extensions={"code": "UNAUTHENTICATED"},
    )


def forbidden() -> GraphQLError:
    return GraphQLError("You may not do this.", extensions={"code": "FORBIDDEN"})


def bad_user_input(message: str, **extensions: Any) -> GraphQLError:
    """A GraphQL error for input the caller got wrong (raise it from a resolver)."""
    return GraphQLError(message, extensions={"code": BAD_USER_INPUT, **extensions})


def query_too_complex(limit: str, maximum: int, actual: int) -> GraphQLError:
    """The refusal of a document over one of the query limits (API.md "Query limits")."""
    return GraphQLError(
        f"The query exceeds the {limit} limit: {actual} > {maximum}.",
        extensions={"code": QUERY_TOO_COMPLEX, "limit": limit, "max": maximum, "actual": actual},
    )


def timed_out(seconds: float, *, outcome_unknown: bool = False) -> GraphQLError:
    """The answer to a request that ran past the execution timeout (its work was cancelled).
    `outcome_unknown`: a mutation's COMMIT had been sent, so its write may have been saved."""
    message = f"The request took longer than {seconds:g} s and was cancelled."
    extensions: dict[str, Any] = {"code": TIMEOUT}
    if outcome_unknown:
        message += " A change it made may have been saved: read it back before retrying."
        extensions["outcomeUnknown"] = True
    return GraphQLError(message, extensions=extensions)


def database_fault(
    error: GraphQLError, fault: DatabaseUnavailable | StatementTimeout
) -> GraphQLError:
    """SERVICE_UNAVAILABLE (TIMEOUT for a statement timeout) in `error`'s place; the driver's
    own message stays in the log."""
    extensions: dict[str, Any] = {"code": SERVICE_UNAVAILABLE}
    message = "The database is unavailable right now. Try again shortly."
    if isinstance(fault, StatementTimeout):
        extensions["code"] = TIMEOUT
        message = "A database statement took too long and was cancelled."
    elif fault.outcome_unknown:
        extensions["outcomeUnknown"] = True
        message = (
            "The database connection broke while this change was being committed: it may or "
            "may not have been saved. Read it back before retrying."
        )
    return GraphQLError(message, nodes=error.nodes, path=error.path, extensions=extensions)


def rate_limited(retry_after: int) -> GraphQLError:
    """A throttled login or sign-up: the field is null, nothing was checked."""
    return GraphQLError(
        f"Too many attempts; try again in {retry_after} s.",
        extensions={"code": RATE_LIMITED, "retryAfter": retry_after},
    )


def throttle_unavailable() -> GraphQLError:
    """The throttle's shared storage did not answer: refuse rather than go unthrottled."""
    return GraphQLError(
        "Sign-in is unavailable for a moment; try again later.",
        extensions={"code": SERVICE_UNAVAILABLE},
    )


def _original(error: GraphQLError) -> BaseException | None:
    original: BaseException | None = error.original_error
    while isinstance(original, GraphQLError) and original.original_error is not None:
        original = original.original_error
    return original


def _code(error: GraphQLError) -> str | None:
    code = (error.extensions or {}).get("code")
    return code if isinstance(code, str) else None


def is_unexpected(error: GraphQLError) -> bool:
    """True for errors that come from a bug or an outage rather than from the request."""
    if _code(error) is not None:
        return False
    original = _original(error)
    if original is None or isinstance(
        original, UserInputError | DatabaseUnavailable | StatementTimeout
    ):
        return False
    return not isinstance(original, GraphQLError)


def classify(error: GraphQLError) -> GraphQLError:
    """The error as the client should see it: with a code, and without internals."""
    code = _code(error)
    if code is not None:
        return error
    original = _original(error)
    if isinstance(original, DatabaseUnavailable | StatementTimeout):
        return database_fault(error, original)
    if is_unexpected(error):
        return GraphQLError(
            UNEXPECTED_MESSAGE,
            nodes=error.nodes,
            path=error.path,
            extensions={"code": INTERNAL_SERVER_ERROR},
        )
    if isinstance(_original(error), UserInputError) or _INPUT_VALUE_MESSAGE.match(error.message):
        code = BAD_USER_INPUT
    elif error.message.startswith("Syntax Error"):
        code = GRAPHQL_PARSE_FAILED
    else:
        code = GRAPHQL_VALIDATION_FAILED
    error.extensions = {**(error.extensions or {}), "code": code}
    return error


def coded(errors: list[GraphQLError], context: Any, operation: str | None) -> list[GraphQLError]:
    """`errors` as the client sees them (`classify`); each unexpected one is logged first,
    with its traceback, naming the request (`who`)."""
    for error in errors:
        if is_unexpected(error):
            _unexpected.emit_for(
                who(context, operation),
                logging.ERROR,
                "unexpected error",
                exc_info=_original(error),
                path=".".join(str(key) for key in error.path or ()) or "-",
            )
    return [classify(error) for error in errors]


class ErrorCodes(SchemaExtension):
    """Give every error a code and mask unexpected ones (logged with their traceback)."""

    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        if result is None or not result.errors:
            return
        ec = self.execution_context
        result.errors = coded(result.errors, ec.context, ec.operation_name)
