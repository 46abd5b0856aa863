"""The root `Mutation`: one module per entity, merged here.

Each module (`accounts`, `posts`, `articles`, `comments`) holds that entity's `Policy`, inputs,
payloads and resolvers; `common` holds the skeleton they all follow (read it first: it fixes
the order of the answers). A new module joins the schema by being listed below.
"""

from strawberry.tools import merge_types

from server.api.mutations.accounts import AccountMutations
from server.api.mutations.articles import ArticleMutations
from server.api.mutations.comments import CommentMutations
from server.api.mutations.posts import PostMutations

# The order here is the order of the fields in schema.graphql.
Mutation = merge_types(
    "Mutation", (AccountMutations, PostMutations, ArticleMutations, CommentMutations)
)

__all__ = ["Mutation"]
