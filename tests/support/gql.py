"""A tiny GraphQL client over the in-process ASGI app."""

from typing import Any

import httpx


class GraphQLClient:
    def __init__(self, http: httpx.AsyncClient, token: str | None = None) -> None:
        self.http = http
        self.token = token

    def as_user(self, token: str | None) -> "GraphQLClient":
        """The same client, sending `Authorization: Bearer <token>` (None: anonymous)."""
        return GraphQLClient(self.http, token)

    async def execute(self, query: str, **variables: Any) -> dict[str, Any]:
        """The whole response body (data and errors)."""
        headers = {} if self.token is None else {"Authorization": f"Bearer {self.token}"}
        response = await self.http.post(
            "/graphql", json={"query": query, "variables": variables}, headers=headers
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def data(self, query: str, **variables: Any) -> dict[str, Any]:
        """`data` of a response that must have no errors."""
        body = await self.execute(query, **variables)
        assert "errors" not in body, body["errors"]
        data: dict[str, Any] = body["data"]
        return data

    async def error_codes(self, query: str, **variables: Any) -> list[str]:
        """The `extensions.code` of each error of a response that must have errors."""
        body = await self.execute(query, **variables)
        assert body.get("errors"), f"expected errors, got {body}"
        for error in body["errors"]:
            assert "Traceback" not in error["message"]
            assert "SELECT" not in error["message"]
        return [error.get("extensions", {}).get("code") for error in body["errors"]]
