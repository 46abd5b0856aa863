"""What every client proof must report, from the demo data of `inkgraph seed`
(server/store/seed.py) and the operations in tests/clients/documents.

Each proof (TypeScript with Apollo Client, Python with ariadne-codegen) runs the same steps and
prints the same report: a page of users by name with each one's two latest posts, the next
page, a `node` refetch of the first user's latest post, a wrong then a right `login` (as
"ADA": any case), a blank then a real `createPost`, the viewer's posts read back, and an
`updatePost`.
"""

from typing import Any


def expected_report(new_title: str, retitle: str) -> dict[str, Any]:
    return {
        "users": {
            "totalCount": 12,
            "page1": ["ada", "barbara", "dennis"],
            "hasNextPage": True,
            "page2": ["edsger", "frances", "grace"],
            "firstUserPosts": {
                "totalCount": 5,
                "titles": ["Testing notes #49", "Window functions notes #37"],
            },
            "createdAtHasOffset": True,
        },
        "node": {"typename": "Post", "title": "Testing notes #49", "username": "ada"},
        "badLogin": {
            "token": None,
            "user": None,
            "errors": [{"field": None, "code": "INVALID_CREDENTIALS"}],
        },
        "login": {"username": "ada", "isEditor": True, "hasToken": True},
        "blankPost": {"post": None, "errors": [{"field": ["title"], "code": "INVALID"}]},
        "created": {"title": new_title, "username": "ada", "errors": []},
        "readBack": {"totalCount": 6, "firstTitle": new_title, "firstIsCreated": True},
        "updated": {"title": retitle, "errors": []},
    }


def assert_report(report: dict[str, Any], new_title: str, retitle: str) -> None:
    """Every expected key holds; compared section by section for a readable failure."""
    for section, expected in expected_report(new_title, retitle).items():
        assert report.get(section) == expected, (section, report.get(section))
