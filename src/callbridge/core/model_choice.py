"""Which model API an agent's calls use: GPT-Live for a `gpt-live*` model, Realtime for any
other. The one place that knows both protocol objects. No I/O. No clock.
"""

from __future__ import annotations

from callbridge.core.agent import AgentProfile
from callbridge.core.live_config import is_live_model
from callbridge.core.live_model import LiveModel
from callbridge.core.model import ModelProtocol
from callbridge.core.realtime_model import RealtimeModel


def model_for(profile: AgentProfile) -> ModelProtocol:
    """The protocol object for the API `profile`'s model is served by."""
    if is_live_model(profile.model):
        return LiveModel(profile, profile.live)
    return RealtimeModel(profile)
