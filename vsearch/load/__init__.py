"""The `load` use case: `run.run_load(settings, LoadRequest) -> LoadReport`.

- `request`: LoadRequest and LoadReport. `plan`: what is decided before a record is read.
- `candidates`: records to documents-to-be with fingerprints. `diff`: what changed (pure: no Redis, no model).
- `embedding`: the model step. `rejects`: bad records. `prune`, `rebuild`: the cron features. `run`: a run.

Nothing is imported here, so that `diff` and `plan` load without Redis (tests/unit).
"""
