"""Global IDs: opaque, base64 of "TypeName:primaryKey", like the Relay servers clients know."""

import base64
import binascii

from server.api.errors import bad_user_input

# `databaseId` is a GraphQL Int and the id columns are INTEGER, so no row of ours has a larger
# key: an ID above it was never issued here (and PostgreSQL would refuse it as a parameter).
MAX_PK = 2**31 - 1


def encode(type_name: str, pk: int) -> str:
    return base64.b64encode(f"{type_name}:{pk}".encode()).decode()


def decode(global_id: str) -> tuple[str, int]:
    """(type name, primary key) of a global ID; BAD_USER_INPUT when it is not one of ours."""
    try:
        raw = base64.b64decode(global_id.encode("ascii"), validate=True).decode("utf-8")
        type_name, _, pk = raw.partition(":")
        if not type_name or not pk.isdigit() or pk != str(int(pk)) or int(pk) > MAX_PK:
            raise ValueError(raw)
        return type_name, int(pk)
    except (ValueError, UnicodeError, binascii.Error):
        raise bad_user_input(f"{global_id!r} is not a valid ID.") from None


def decode_as(global_id: str, type_name: str) -> int:
    """The primary key of a global ID that must name a `type_name`."""
    actual, pk = decode(global_id)
    if actual != type_name:
        raise bad_user_input(f"ID {global_id!r} is a {actual}, not a {type_name}.")
    return pk
