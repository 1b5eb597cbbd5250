"""A real call captured end to end — a tool call with its holding line, a barge-in, an upstream
reconnect — replays through the core with no divergence; a changed decision shows where."""

from __future__ import annotations

import asyncio
import gzip
import json
import sys
from pathlib import Path

import pytest

from callbridge.capture.file import Capture, read
from callbridge.capture.replay import print_report, replay
from callbridge.cli import main
from callbridge.testing.fake_realtime import Reply, ToolCall
from callbridge.testing.speech import speechlike
from tests.e2e.harness import connected_call, harness

pytestmark = pytest.mark.e2e


async def place_call(folder: Path) -> None:
    agents = folder / "agents.toml"
    agents.write_text('tools_module = "tests.e2e.agent_tools"\n'
                      '[agent]\ntools = ["lookup_order"]\n')
    replies = [Reply(tool_call=ToolCall("lookup_order", {"order_id": "A-17"})),
               Reply(text="Your order A-17 ships tomorrow.", audio=speechlike(3.0, seed=4)),
               Reply(text="Sure, go ahead.")]
    env = {"CALLBRIDGE_AGENT_FILE": str(agents), "CALLBRIDGE_CAPTURE_DIR": str(folder / "cap")}
    async with harness(replies, env=env, user_transcripts=["Where is my order?", "Wait"]) as h:
        async with await connected_call(h, from_number="+15551234567") as caller:
            await caller.say(speechlike(0.8, seed=1))
            await h.fake.wait_for_event("conversation.item.create", timeout=8.0)  # tool output
            await asyncio.sleep(1.2)  # the answer follows the comfort tone with no gap
            await caller.say(speechlike(0.6, seed=2))  # over the answer: a barge-in
            await caller.wait_for_agent_audio(timeout=5.0, after=caller.spoken_until)
            await caller.wait_until_agent_quiet(quiet_for=0.5, timeout=10.0)
            await h.fake.drop_all()  # the upstream is lost mid-call: a reconnect
            await h.fake.wait_for(lambda: len(h.fake.connections) == 2, timeout=5.0)
            await h.fake.wait_for_event("conversation.item.create", timeout=5.0)
            await asyncio.sleep(0.3)
            await caller.hang_up()
        bridge = h.bridge_of(caller)
        await asyncio.wait_for(bridge.finished.wait(), 10.0)


@pytest.fixture(scope="module")
def captured(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("capture")
    asyncio.run(place_call(folder))
    [path] = (folder / "cap").glob("*.jsonl.gz")
    return path


def sent(capture: Capture, side: str, kind: str) -> list[dict[str, object]]:
    messages = [json.loads(w[1]) for e in capture.entries for w in e.out if w[0] == side]
    return [m for m in messages if m.get("type", m.get("event")) == kind]


def test_the_capture_holds_both_sockets_and_the_other_inputs_with_their_times(
        captured: Path) -> None:
    """Messages in from both sockets, decisions out, tool results, upstream loss and
    reopening, wake-ups — in time order, numbers masked, the stream token gone."""
    capture = read(captured)
    calls = [e.call for e in capture.entries]
    for kind in ("begin", "upstream_opened", "receive_twilio", "receive_realtime", "wake",
                 "tool_result", "upstream_lost", "twilio_closed"):
        assert kind in calls, kind
    assert calls.count("upstream_opened") == 2
    times = [e.now for e in capture.entries]
    assert times == sorted(times)
    assert sent(capture, "realtime", "conversation.item.truncate"), "the barge-in"
    assert sent(capture, "twilio", "clear")
    assert len(sent(capture, "realtime", "session.update")) >= 2, "one per upstream session"
    text = gzip.decompress(captured.read_bytes()).decode()
    assert "+15551234567" not in text
    assert "+1555•••4567" in text  # the caller's number, masked (it reached the tool result too)
    start = next(json.loads(e.args[0]) for e in capture.entries
                 if e.call == "receive_twilio" and '"start"' in e.args[0])
    assert start["start"]["customParameters"]["token"] == "•••"


def test_the_captured_call_replays_with_no_divergence(captured: Path) -> None:
    """Every input through a fresh session decides exactly what was sent."""
    result = replay(read(captured))
    assert result.first_divergence is None
    assert sum(len(step.decided) for step in result.steps) > 100


def test_a_changed_decision_shows_the_divergence_at_the_wake_up_that_said_the_filler(
        captured: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """filler_after_s 1 → 5: the first difference is the wake-up 1 s into the tool call,
    where the holding line was asked for; everything before it is as sent."""
    capture = read(captured)
    result = replay(capture, changes={"filler_after_s": 5.0})
    first = result.first_divergence
    assert first is not None
    tool_started = next(e.now for e in capture.entries
                        if any(w[0] == "realtime" and "function_call" in w[1] for w in e.out)
                        or (e.call == "receive_realtime" and "function_call_arguments.done"
                            in e.args[0]))
    assert first.entry.call == "wake"
    assert first.entry.now - tool_started == pytest.approx(1.0, abs=0.1)
    holding = [json.loads(w[1]) for w in first.entry.out if w[0] == "realtime"]
    assert any("One moment." in str(m.get("response", {})) for m in holding)
    assert all(json.loads(w[1]).get("type") != "response.create"
               for w in first.decided if w[0] == "realtime")
    print_report(result, sys.stdout)
    out = capsys.readouterr().out
    assert f"DIVERGED at input #{first.index} (wake" in out
    assert "replayed now:" in out


def test_the_replay_command_exits_0_when_all_is_as_sent_and_1_on_a_divergence(
        captured: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`callbridge replay FILE` and `--set filler_after_s=5`."""
    assert main(["replay", str(captured)]) == 0
    assert "no divergence" in capsys.readouterr().out
    assert main(["replay", str(captured), "--set", "filler_after_s=5"]) == 1
    assert "DIVERGED" in capsys.readouterr().out
    assert main(["replay", str(captured), "--set", "nonsense=1"]) == 2
