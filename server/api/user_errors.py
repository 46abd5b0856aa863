"""Input checks that run before any SQL, collected into `userErrors`.

Every problem with the caller's input becomes a `UserError` whose `field` is the path inside
`input` (e.g. ["title"]); all of them are reported at once, and nothing is written.
"""

import re
from dataclasses import dataclass, field
from enum import Enum

import strawberry
from graphql import GraphQLError

from loaders.filters import NUL
from server.api import ids

USERNAME_PATTERN = re.compile(r"[A-Za-z0-9_.\-]{3,32}")
PASSWORD_MIN, PASSWORD_MAX = 8, 128


@strawberry.enum
class UserErrorCode(Enum):
    INVALID = "INVALID"
    TAKEN = "TAKEN"
    NOT_FOUND = "NOT_FOUND"
    INVALID_CREDENTIALS = "INVALID_CREDENTIALS"


@strawberry.type(description="Something the caller got wrong; nothing was written.")
class UserError:
    field: list[str] | None
    message: str
    code: UserErrorCode


class Rejected(Exception):
    """Abort a mutation (rolling back its transaction) and answer with these user errors."""

    def __init__(self, errors: list[UserError]) -> None:
        super().__init__(errors)
        self.errors = errors


def user_error(path: str | None, code: UserErrorCode, message: str) -> UserError:
    return UserError(field=None if path is None else [path], message=message, code=code)


@dataclass
class Checks:
    """Collects user errors while a resolver reads its input."""

    errors: list[UserError] = field(default_factory=list)

    def fail(self, path: str | None, code: UserErrorCode, message: str) -> None:
        self.errors.append(user_error(path, code, message))

    def raise_if_any(self) -> None:
        if self.errors:
            raise Rejected(self.errors)

    def username(self, value: str, path: str = "username") -> str:
        if not USERNAME_PATTERN.fullmatch(value):
            self.fail(
                path,
                UserErrorCode.INVALID,
                "A username is 3 to 32 characters: letters, digits, '_', '.' or '-'.",
            )
        return value

    def password(self, value: str, path: str = "password") -> str:
        if not PASSWORD_MIN <= len(value) <= PASSWORD_MAX:
            self.fail(
                path,
                UserErrorCode.INVALID,
                f"A password is {PASSWORD_MIN} to {PASSWORD_MAX} characters.",
            )
        return value

    def text(self, value: str, path: str, max_length: int) -> str:
        if not value.strip():
            self.fail(path, UserErrorCode.INVALID, f"`{path}` must not be blank.")
        elif NUL in value:
            # PostgreSQL cannot store it in a text column (the driver raises): refused on every
            # backend, so that all three keep the same data.
            self.fail(path, UserErrorCode.INVALID, f"`{path}` must not contain U+0000 (NUL).")
        elif len(value) > max_length:
            self.fail(
                path,
                UserErrorCode.INVALID,
                f"`{path}` is at most {max_length} characters; got {len(value)}.",
            )
        return value

    def node_id(self, value: str, type_name: str, path: str = "id") -> int:
        """The primary key behind a global ID of `type_name` (0 and a NOT_FOUND error if not)."""
        try:
            return ids.decode_as(value, type_name)
        except GraphQLError:
            self.fail(path, UserErrorCode.NOT_FOUND, f"No {type_name} has the ID {value!r}.")
            return 0


def not_found(type_name: str, value: str, path: str = "id") -> Rejected:
    return Rejected(
        [user_error(path, UserErrorCode.NOT_FOUND, f"No {type_name} has the ID {value!r}.")]
    )
