"""The console's operator pages: the overview's charts, agents and numbers (read-only, secrets
masked) and dead-lettered post-call jobs with retry."""

from __future__ import annotations

import time
from dataclasses import fields
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.exc import SQLAlchemyError
from starlette.responses import Response

from callbridge.core.agent import AgentProfile
from callbridge.server.console.charts import bar_chart
from callbridge.server.console.pages import pretty
from callbridge.server.console.web import Console, Visit, back_to, render
from callbridge.store import browse
from callbridge.store.jobs import JobQueue

DEFAULT_DAYS = 14
SECRET_WORDS = ("secret", "password", "token", "key")
MASK = "••••••"


async def overview(console: Console, visit: Visit) -> Response:
    store = console.server.store
    if store is None:
        return render(visit, "message.html", 503, title="Overview",
                      message="The call record is off (DATABASE_URL=none).")
    params = visit.request.query_params
    today = datetime.now(UTC).date()
    try:
        last = date.fromisoformat(params["to"]) if params.get("to") else today
        first = (date.fromisoformat(params["from"]) if params.get("from")
                 else last - timedelta(days=DEFAULT_DAYS - 1))
    except ValueError:
        return render(visit, "message.html", 400, title="Overview",
                      message="from and to must be dates like 2026-12-06.")
    try:
        days = await browse.overview(store, first, last)
    except SQLAlchemyError:
        return render(visit, "message.html", 503, title="Overview",
                      message="The database is unavailable.")
    series = browse.group_days(days)
    labels = [d[5:] for d in series["day"]]
    charts = [
        bar_chart("Calls per day", labels, series["calls"]),
        bar_chart("Minutes", labels, series["minutes"], digits=1),
        bar_chart("Cost", labels, series["cost_usd"], unit="$", digits=2),
        bar_chart("Turn latency p50", labels, series["p50_ms"], unit=" ms", total=False),
        bar_chart("Turn latency p95", labels, series["p95_ms"], unit=" ms", total=False),
        bar_chart("Barge-ins", labels, series["barge_ins"]),
        bar_chart("Reconnects", labels, series["reconnects"]),
        bar_chart("Apologies (model unreachable)", labels, series["apologies"]),
    ]
    return render(visit, "overview.html", charts=charts, first=days[0].day.isoformat(),
                  last=days[-1].day.isoformat())


def masked_settings(profile: AgentProfile) -> list[tuple[str, str]]:
    """The agent's settings as (name, shown value), secrets masked and URLs without
    credentials or query strings."""
    shown = []
    for field in fields(profile):
        name = field.name
        if name in ("tools", "name"):
            continue
        value: Any = getattr(profile, name)
        if any(word in name for word in SECRET_WORDS):
            text = MASK if value else "—"
        elif name.endswith("_url") and isinstance(value, str) and value:
            text = _bare_url(value)
        elif isinstance(value, dict | list | tuple):
            text = pretty(value) if value else "—"
        else:
            text = "—" if value is None else str(value)
        shown.append((name, text))
    return shown


def _bare_url(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}" + ("?…" if parts.query else "")


async def agents(console: Console, visit: Visit) -> Response:
    directory = console.server.settings.directory
    numbers = sorted(directory.numbers.items())
    described = [{"name": name, "default": name == directory.default,
                  "numbers": [n for n, a in numbers if a == name],
                  "settings": masked_settings(profile),
                  "tools": [(t.get("name", ""), t.get("description", ""),
                             pretty(t.get("parameters", {}))) for t in profile.all_tools()]}
                 for name, profile in sorted(directory.agents.items())]
    return render(visit, "agents.html", agents=described, numbers=numbers,
                  default=directory.default)


async def jobs(console: Console, visit: Visit) -> Response:
    store = console.server.store
    if store is None:
        return render(visit, "message.html", 503, title="Jobs",
                      message="The call record is off (DATABASE_URL=none).")
    queue = JobQueue(store.engine)
    try:
        dead = await queue.list("dead", limit=200)
        counts = await queue.counts()
    except SQLAlchemyError:
        return render(visit, "message.html", 503, title="Jobs",
                      message="The database is unavailable.")
    return render(visit, "jobs.html", dead=dead, counts=sorted(counts.items()))


async def retry(console: Console, visit: Visit) -> Response:
    """Retry one dead job (`job` field) or, with `all`, every dead job."""
    store = console.server.store
    if store is None:
        return back_to("/console/jobs", error="The call record is off.")
    queue = JobQueue(store.engine)
    form = await visit.request.form()
    if form.get("all") == "yes":
        count = await queue.retry_dead(time.time())
        return back_to("/console/jobs", note=f"{count} dead job(s) will run again.")
    raw = form.get("job")
    if not isinstance(raw, str) or not raw.isascii() or not raw.isdigit() or len(raw) > 10:
        return back_to("/console/jobs", error="No such job.")
    if not await queue.retry_job(int(raw), time.time()):
        return back_to("/console/jobs", error=f"Job {raw} is not waiting to run (done or "
                                               "running).")
    return back_to("/console/jobs", note=f"Job {raw} will run again.")
