"""The `query` use case; see `run` (entry points: `query_rows`, `batch_query_rows`, `explain_query`).

- `request`: QueryRequest. `plan`: checks and the commands a query sends (`explain`). `hybrid`: text and hybrid
  modes and their fusion (pure). `vectors`: query vectors and the query cache. `batch_file`: `--batch` input.
  `rows`: hits to output rows.

Nothing is imported here: the CLI imports the option enums of `hybrid` at start-up, and must not pay for Redis.
"""
