"""Post-call analytics: what happens after a call, never during one.

When a call ends, the transaction that records its end also writes its jobs (the outbox, in
`callbridge.store.repository`). Workers claim them (`jobs`), run them (`handlers`: the model's
analysis in `analyzer`, signed webhooks in `delivery`) and write each outcome in one guarded
transaction (`results`). `worker` is the loop; `service` wires it to the settings.
"""
