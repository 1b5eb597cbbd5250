"""The call record: every call, turn, tool call, event and usage figure, in SQLite or PostgreSQL.

Writes never touch the audio path: bridges submit records to a bounded queue drained by one
writer task (`writer`), which spills to a local journal when the database is down (`journal`).
"""
