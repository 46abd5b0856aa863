"""inkgraph: a batched, paginated GraphQL API over users, posts, articles and comments."""

__version__ = "0.1.0"
