"""The GraphQL surface: schema, context, errors, scalars, ids, cursors, nodes, query, mutations."""
