"""The I/O adapters around the core: the ASGI app, the per-call bridge and the upstream client.

An adapter delivers messages to a `CallSession` and carries out the actions it returns; it never
decides what the call does.
"""
