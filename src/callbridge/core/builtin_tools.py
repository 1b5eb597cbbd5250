"""The built-in tools, carried out in the core: `end_call`, `transfer_call` and `switch_agent`,
plain functions over the session's public parts.

A hang-up or transfer waits until the caller has heard the agent's last words (`ending`); a
hand-off to another agent reconfigures the model, or opens a fresh session when the model cannot
take the change (a Realtime session's voice is fixed once it has spoken). Any agent reachable by
hand-offs can hand on again (A → B → A, A → B → C). No I/O. No clock.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from callbridge.core import conduct
from callbridge.core.actions import Action, HangUp, Note, RedirectCall
from callbridge.core.agent import AgentProfile, instructed, say_exactly
from callbridge.core.control import transfer_twiml
from callbridge.core.model import ToolCallRequested

if TYPE_CHECKING:
    from callbridge.core.session import CallSession


def enabled_builtins(profile: AgentProfile) -> set[str]:
    enabled = set(profile.builtin_tools)
    if profile.handoffs:
        enabled.add("switch_agent")
    return enabled


def end_call(s: CallSession, call: ToolCallRequested, now: float) -> list[Action]:
    reason = _argument(call.arguments, "reason") or "the conversation was finished"
    conduct.add_output(s, call.call_id, '{"ok": true}')
    _announce_then(s, call, now, HangUp(f"agent ended the call: {reason}"),
                   instructed("Say a brief, friendly goodbye to the caller now.", "goodbye"))
    return conduct.flush(s)


def transfer_call(s: CallSession, call: ToolCallRequested, now: float) -> list[Action]:
    target = _argument(call.arguments, "target")
    number = s.profile.transfer_targets.get(target)
    if number is None:
        choices = ", ".join(sorted(s.profile.transfer_targets)) or "none"
        conduct.add_output(s, call.call_id, json.dumps(
            {"error": f"there is no transfer target {target!r}; choose one of: {choices}"}))
        s.reply.want(s.reply.followup_body)
        return conduct.flush(s)
    conduct.add_output(s, call.call_id, '{"ok": true, "status": "transferring"}')
    twiml = transfer_twiml(number, s.profile.transfer_fallback)
    _announce_then(s, call, now, RedirectCall(twiml, f"transferred to {target}"),
                   say_exactly(s.profile.transfer_announcement, "transfer"))
    return [Note("transfer", {"target": target}), *conduct.flush(s)]


def switch_agent(s: CallSession, call: ToolCallRequested, now: float) -> list[Action]:
    name = _argument(call.arguments, "agent")
    if name not in s.profile.handoffs or name not in s.agents:
        choices = ", ".join(s.profile.handoffs) or "none"
        conduct.add_output(s, call.call_id, json.dumps(
            {"error": f"there is no agent {name!r}; choose one of: {choices}"}))
        s.reply.want(s.reply.followup_body)
        return conduct.flush(s)
    conduct.add_output(s, call.call_id, json.dumps({"ok": True, "agent": name}))
    s.pending_switch = name
    s.reply.want(instructed("You have just taken over this call. Tell the caller in a few "
                            "words that you can help, then continue.", "handoff"))
    return conduct.flush(s)


def _announce_then(s: CallSession, call: ToolCallRequested, now: float,
                   closing: HangUp | RedirectCall, announcement: dict[str, Any]) -> None:
    """Close the call once the caller has heard the agent's last words. If the reply that
    called the tool already spoke (the usual "Goodbye!" before `end_call`), those are the last
    words; otherwise the agent is asked to say `announcement` first."""
    if call.reply_id in s.reply.spoke:
        s.reply.want_silent()
    else:
        s.reply.want(announcement)
    if s.ending.can("announce"):
        s.ending.announce(closing, now)


def _argument(arguments: str, name: str) -> str:
    """One string argument of a built-in tool call ("" when absent or malformed)."""
    try:
        value = json.loads(arguments).get(name, "")
    except (ValueError, AttributeError):
        return ""
    return value if isinstance(value, str) else ""


BUILTINS: dict[str, Callable[[CallSession, ToolCallRequested, float], list[Action]]] = {
    "end_call": end_call,
    "transfer_call": transfer_call,
    "switch_agent": switch_agent,
}
