"""Post-call analytics: what happens after a call, never during one.

When a call ends, the transaction that records its end also writes its jobs (the outbox, in
`callbridge.store.jobs`, which owns the queue's SQL). Workers claim them through that queue, run
them (`handlers`: the model's analysis in `analyzer`, signed webhooks in `delivery`) and the queue
writes each outcome (`callbridge.store.outcomes`) in one guarded transaction. `worker` is the
loop; `service` wires it to the settings.
"""
