"""Capacity benchmark: concurrent calls per core through the real server, and the latency the
bridge adds. Run `python -m benchmarks.load` (full ramp) or `python -m benchmarks.load --smoke`.

Modules: `run` (the orchestrator), `callers` (the lean load client, many calls per process),
`frames` (what a frame carries and how its echo is matched: by tag, or by byte offset with
`--audio pcm16`), `echo_upstream` (a fake Realtime — or, with `--api live`, GPT-Live — server
that echoes caller audio as agent audio), `relay` (the zero-logic baseline), `server` (processes,
pinning, /proc), `wire` (lean WebSockets), `report` (table and plot), `compare` (GPT-Live against
Realtime, `--api both`), `profile` (py-spy). The method and the results are in
docs/benchmarks.md.
"""
