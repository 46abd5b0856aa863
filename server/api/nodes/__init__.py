"""The entities: one module per entity, each registering itself (see `base`).

Importing this package imports every module in it, so a new entity joins `ENTITIES` — and
with it the schema, `node`/`nodes`, the root connections and the registry-driven tests — by
existing. The registry orders entities as their tables are declared in server/store/models.py.
"""

import importlib
import pkgutil

from server.api.nodes.base import ENTITIES, Entity, EntityError, Node, RowNode

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["ENTITIES", "Entity", "EntityError", "Node", "RowNode"]
