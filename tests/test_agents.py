"""The agent directory: which agents a call may be handed to."""

from __future__ import annotations

from callbridge.agents import load_directory


def test_handoff_targets_include_every_agent_reachable_through_handoffs() -> None:
    """front → billing → claims (and billing → front): a call answered by front may reach all
    three; an agent nobody hands to is not among them."""
    directory = load_directory({
        "agents": {
            "front": {"handoffs": ["billing"]},
            "billing": {"handoffs": ["front", "claims"]},
            "claims": {},
            "sales": {},
        },
    }, {})
    front = directory.agents["front"]
    assert sorted(directory.handoff_targets(front)) == ["billing", "claims", "front"]
    assert directory.handoff_targets(directory.agents["claims"]) == {}
