"""`QueryLimits` and the schema extension that enforces them before anything runs.

The order is the contract's (API.md "Query limits"): characters before parsing; tokens while
parsing (graphql-core's lexer stops at the limit); then directives, aliases, depth, nodes and
cost from one walk of the AST (server/api/complexity.py); then the argument caps; then
validation. A refusal is one `QUERY_TOO_COMPLEX` (or `BAD_USER_INPUT` for an argument cap)
error, the document is neither validated nor executed, and no SQL runs.

Everything is cached per document text in small LRUs (`CACHE_SIZE` entries): the parsed
document and its text-only counts, the validation errors, and the depth/nodes/cost figures keyed
by the only variables that change them (page sizes and list lengths). A repeated document thus
costs dictionary lookups, and a refused one costs about as much as reading it.

`LimitsExtension` replaces strawberry's `ParserCache` and `ValidationCache` (same caching, plus
the limits, the introspection switch and graphql-core's `hide_suggestions`).
"""

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from graphql import (
    ASTValidationRule,
    DocumentNode,
    GraphQLError,
    GraphQLSchema,
    parse,
    specified_rules,
    validate,
)
from graphql.validation import NoSchemaIntrospectionCustomRule
from strawberry.extensions import SchemaExtension
from strawberry.schema.validation_rules.maybe_null import MaybeNullValidationRule
from strawberry.schema.validation_rules.one_of import OneOfInputValidationRule

from server.api import complexity
from server.api.errors import bad_user_input, query_too_complex
from server.api.faults import OPERATION_SCOPE_KEY, request_scope, who
from server.events import events

CACHE_SIZE = 256
MAX_ERRORS = 10  # errors per answer
_TOKEN_ERROR = "Syntax Error: Document contains more than"


@dataclass(frozen=True, slots=True)
class QueryLimits:
    """The limits of API.md "Limits and protection"; 0 turns one off. Built from Settings."""

    max_characters: int = 15_000
    max_tokens: int = 1_000
    max_directives: int = 50
    max_aliases: int = 15
    max_depth: int = 12
    max_nodes: int = 20_000
    max_cost: int = 50_000
    max_node_ids: int = complexity.MAX_NODE_IDS
    max_input_list: int = complexity.MAX_INPUT_LIST
    execution_timeout: float = 10.0
    introspection: bool = True
    suggestions: bool = False


UNLIMITED = QueryLimits(0, 0, 0, 0, 0, 0, 0, 0, 0, 0.0, introspection=True, suggestions=True)


class _Entry:
    """One parsed document text, with its counts and the results computed for it so far."""

    __slots__ = ("counts", "document", "figures", "validation")

    def __init__(self, document: DocumentNode) -> None:
        self.document = document
        self.counts = complexity.document_counts(document)
        # Keyed by small tuples, never by the document: an AST node hashes its whole subtree.
        self.validation: dict[tuple[Any, ...], list[GraphQLError]] = {}
        self.figures: dict[tuple[Any, ...], complexity.Figures | complexity.ArgumentCapError] = {}


@lru_cache(maxsize=CACHE_SIZE)
def _parse(query: str, max_tokens: int) -> _Entry:
    # A syntax error is raised, and not cached: it cost at most `max_tokens` tokens to find.
    return _Entry(parse(query, max_lexical_tokens=max_tokens or None))


_FIGURES_PER_DOCUMENT = 64  # distinct (operation, page sizes) kept per document


def _figures(
    schema: GraphQLSchema,
    entry: _Entry,
    operation: str | None,
    variables: Any,
    caps: complexity.Caps,
) -> complexity.Figures | complexity.ArgumentCapError:
    key = (operation, caps, complexity.sizing_key(entry.counts, variables))
    figures = entry.figures.get(key)
    if figures is None:
        try:
            figures = complexity.measure(schema, entry.document, operation, variables, caps)
        except complexity.ArgumentCapError as error:
            figures = error
        if len(entry.figures) >= _FIGURES_PER_DOCUMENT:
            entry.figures.clear()
        entry.figures[key] = figures
    return figures


def _validate(
    schema: GraphQLSchema,
    entry: _Entry,
    rules: tuple[type[ASTValidationRule], ...],
    hide_suggestions: bool,
) -> list[GraphQLError]:
    key = (rules, hide_suggestions)
    errors = entry.validation.get(key)
    if errors is None:
        errors = entry.validation[key] = validate(
            schema, entry.document, rules, hide_suggestions=hide_suggestions
        )
    return errors


def _log_event(context: Any, operation: str | None, level: int, event: str, **fields: Any) -> None:
    """One line of the operator's log (server/events.py) for this request."""
    events.emit_for(who(context, operation), level, event, **fields)


def over_limit(
    schema: GraphQLSchema,
    limits: QueryLimits,
    caps: complexity.Caps,
    entry: _Entry,
    operation: str | None,
    variables: Any,
) -> tuple[str, int, int] | complexity.ArgumentCapError | None:
    """The first limit the parsed document goes over, in the contract's order, as (limit,
    maximum, actual) or an argument cap; None when it keeps to all of them. Pure: the caller
    logs and answers the refusal."""
    counts = entry.counts
    for limit, maximum, actual in (
        ("directives", limits.max_directives, counts.directives),
        ("aliases", limits.max_aliases, counts.aliases),
    ):
        if maximum and actual > maximum:
            return limit, maximum, actual
    try:
        figures = _figures(schema, entry, operation, variables, caps)
    except RecursionError:  # only reachable with the token limit off
        return "depth", limits.max_depth, limits.max_depth + 1
    if isinstance(figures, complexity.ArgumentCapError):
        return figures
    for limit, maximum, actual in (
        ("depth", limits.max_depth, figures.depth),
        ("nodes", limits.max_nodes, figures.nodes),
        ("cost", limits.max_cost, figures.cost),
    ):
        if maximum and actual > maximum:
            return limit, maximum, actual
    try:
        complexity.check_variable_lists(variables, limits.max_input_list)
    except complexity.ArgumentCapError as error:
        return error
    return None


def validation_rules(
    limits: QueryLimits, rules: Sequence[type[ASTValidationRule]]
) -> tuple[type[ASTValidationRule], ...]:
    """`rules` (strawberry's configured ones) and what strawberry's own validate_document
    adds to them, plus the introspection switch."""
    extra: tuple[type[ASTValidationRule], ...] = (
        MaybeNullValidationRule,
        OneOfInputValidationRule,
    )
    if not limits.introspection:
        extra += (NoSchemaIntrospectionCustomRule,)
    return (*rules, *extra)


class Admission:
    """What `LimitsExtension` would say of a document, read from its caches, with nothing
    logged: server/api/direct.py asks it before taking a query past strawberry."""

    def __init__(self, schema: GraphQLSchema, limits: QueryLimits) -> None:
        self.schema = schema
        self.limits = limits
        self.caps = complexity.Caps(limits.max_node_ids, limits.max_input_list)
        # strawberry's default rules, as its execution context gives them to the extension.
        self.rules = validation_rules(limits, specified_rules)

    def parse(self, query: str) -> _Entry | None:
        """The cached parse of `query` (None: too long, or not a document)."""
        if self.limits.max_characters and len(query) > self.limits.max_characters:
            return None
        try:
            return _parse(query, self.limits.max_tokens)
        except GraphQLError:
            return None

    def admits(self, entry: _Entry, operation: str | None, variables: Any) -> bool:
        """Whether the document keeps to every limit and validates with no error. `operation`
        is the name strawberry's execution context gives (the first operation's when the
        request names none): the cached figures are keyed by it."""
        limits = self.limits
        if over_limit(self.schema, limits, self.caps, entry, operation, variables) is not None:
            return False
        return not _validate(self.schema, entry, self.rules, not limits.suggestions)


class LimitsExtension(SchemaExtension):
    """Parse (cached), refuse documents over a limit, validate (cached) — see the module doc."""

    def __init__(self, limits: QueryLimits) -> None:
        super().__init__()
        self.limits = limits
        self._caps = complexity.Caps(limits.max_node_ids, limits.max_input_list)

    def _refuse(self, limit: str, maximum: int, actual: int) -> GraphQLError:
        ec = self.execution_context
        _log_event(
            ec.context,
            ec.operation_name,
            logging.WARNING,
            "query refused",
            limit=limit,
            actual=actual,
            max=maximum,
        )
        return query_too_complex(limit, maximum, actual)

    def on_parse(self) -> Iterator[None]:
        ec = self.execution_context
        query = ec.query or ""
        limits = self.limits
        if limits.max_characters and len(query) > limits.max_characters:
            raise self._refuse("characters", limits.max_characters, len(query))
        try:
            parsed = _parse(query, limits.max_tokens)
        except GraphQLError as error:
            if limits.max_tokens and error.message.startswith(_TOKEN_ERROR):
                # The lexer stopped at the first token past the limit.
                raise self._refuse("tokens", limits.max_tokens, limits.max_tokens + 1) from None
            raise
        ec.graphql_document = parsed.document
        self._entry = parsed
        scope = request_scope(ec.context)
        if scope is not None:  # for a later line of this request (a timeout)
            scope[OPERATION_SCOPE_KEY] = ec.operation_name
        yield

    def on_validate(self) -> Iterator[None]:
        ec = self.execution_context
        error = self._check(self._entry)
        if error is not None:
            ec.pre_execution_errors = [error]
        else:
            ec.pre_execution_errors = _validate(
                ec.schema._schema,
                self._entry,
                validation_rules(self.limits, ec.validation_rules),
                not self.limits.suggestions,
            )
        yield

    def _check(self, entry: _Entry) -> GraphQLError | None:
        ec = self.execution_context
        schema = ec.schema._schema
        over = over_limit(schema, self.limits, self._caps, entry, ec.operation_name, ec.variables)
        if isinstance(over, complexity.ArgumentCapError):
            return self._cap(over)
        if over is not None:
            return self._refuse(*over)
        return None

    def _cap(self, error: complexity.ArgumentCapError) -> GraphQLError:
        ec = self.execution_context
        _log_event(
            ec.context,
            ec.operation_name,
            logging.INFO,
            "argument capped",
            argument=error.argument,
            actual=error.actual,
            max=error.maximum,
        )
        return bad_user_input(
            f"`{error.argument}` takes at most {error.maximum} items; got {error.actual}.",
            argument=error.argument,
        )


def trim_errors(errors: list[GraphQLError]) -> list[GraphQLError]:
    """At most `MAX_ERRORS` errors, and a request error (no path) repeated only once."""
    kept: list[GraphQLError] = []
    seen: set[str] = set()
    for error in errors:
        if not error.path:
            if error.message in seen:
                continue
            seen.add(error.message)
        kept.append(error)
        if len(kept) == MAX_ERRORS:
            break
    return kept


def log_timeout(context: Any, operation: str | None, timeout: float, elapsed: float) -> None:
    _log_event(
        context,
        operation,
        logging.WARNING,
        "request timed out",
        elapsed=f"{elapsed:.1f}s",
        timeout=f"{timeout:g}s",
    )
