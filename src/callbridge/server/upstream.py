"""Opening the OpenAI Realtime WebSocket for one call.

Owns the handshake (URL with `?model=`, `Authorization: Bearer`, never `OpenAI-Beta`) and the
translation of every way it can fail into `UpstreamError`, at this one boundary.
"""

from __future__ import annotations

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI

from callbridge.config import Settings
from callbridge.core.agent import AgentProfile
from callbridge.errors import UpstreamError

MAX_EVENT_BYTES = 16 * 1024 * 1024


async def open_realtime(settings: Settings, agent: AgentProfile) -> ClientConnection:
    """Open a Realtime session socket for `agent`'s model. Raises `UpstreamError` with a
    one-line reason."""
    token = settings.openai_api_key or "no-key"
    try:
        return await connect(
            settings.realtime_url_for(agent),
            additional_headers={"Authorization": f"Bearer {token}"},
            open_timeout=settings.upstream_open_timeout,
            close_timeout=1.0,
            max_size=MAX_EVENT_BYTES,
            compression=None,
            user_agent_header="callbridge",
        )
    except InvalidStatus as exc:
        raise UpstreamError(f"handshake refused with HTTP {exc.response.status_code}") from exc
    except (InvalidHandshake, InvalidURI) as exc:
        raise UpstreamError(f"handshake failed: {exc}") from exc
    except TimeoutError as exc:
        raise UpstreamError("handshake timed out") from exc
    except OSError as exc:
        raise UpstreamError(f"cannot connect: {exc.strerror or exc}") from exc


def describe_close(exc: ConnectionClosed) -> str:
    """A short reason for a lost socket, e.g. "1006 (no close frame)"."""
    received = exc.rcvd
    if received is None:
        return "1006 (no close frame)"
    return f"{received.code} {received.reason}".strip()
