"""`python -m benchmarks.load`: how many concurrent calls one core carries, and what the bridge
adds to each frame's round trip.

N simulated Twilio callers send 20 ms μ-law frames in real time through the real server
(`callbridge serve`, pinned to one core) to a fake OpenAI Realtime server that echoes every frame
back as agent audio; each frame's round trip is timed. N ramps up (`--steps`), each step held
`--hold` seconds, until p99 bridge-added latency (callbridge's round trip minus a zero-logic
relay's at the same N) exceeds `--budget-ms` or a frame is lost. Prints progress, then a table;
writes the table, the raw results and a plot to `--out` (docs/benchmarks/ by default).

`--audio pcm16`: the server converts μ-law ⇄ PCM16 24 kHz (CALLBRIDGE_AUDIO_FORMAT=pcm16). The
callers send a tone and match echoes by byte offset, and the budget is on load-added latency: p99
round trip over the p99 at the first step (unloaded), since libsoxr's own hold-back (13–73 ms each
way) is no bridge cost the relay could stand for. Files: load-pcm16.* instead of load.*.

`--api live`: the same through a GPT-Live agent (CALLBRIDGE_MODEL=gpt-live-1.1) against the echo
upstream speaking GPT-Live; `--api both` measures the Realtime and the GPT-Live server one after
the other at each step and prints, per step, server CPU per call for each and the ratio
live/realtime. Files: load-live.* instead of load.*.

`--smoke`: N=5 for 3 s, prints the table, writes nothing, exits 1 if any frame was lost.
`--target-url`: measure another bridge (see docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from benchmarks.load.run import DEFAULT_STEPS, run
from benchmarks.load.server import REPO


def _steps(text: str) -> list[int]:
    steps = sorted({int(part) for part in text.split(",") if part.strip()})
    if not steps or steps[0] < 1:
        raise argparse.ArgumentTypeError("steps are positive integers, e.g. 10,50,100")
    return steps


def _param(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError("expected NAME=VALUE")
    return name, value


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.load", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--smoke", action="store_true",
                   help="N=5 for 3 s, no files, exit 1 on any lost frame (CI)")
    p.add_argument("--audio", choices=["pcmu", "pcm16"], default="pcmu",
                   help="pcmu (default): μ-law passthrough, tagged frames matched by tag, budget "
                        "on bridge-added latency (over the relay). pcm16: the server runs with "
                        "CALLBRIDGE_AUDIO_FORMAT=pcm16 (μ-law ⇄ PCM16 24 kHz via libsoxr), the "
                        "callers send a 400 Hz tone matched by byte offset, and the budget is "
                        "on load-added latency (p99 round trip minus the p99 at the first "
                        "step, unloaded); the relay still passes μ-law through")
    p.add_argument("--api", choices=["realtime", "live", "both"], default="realtime",
                   help="the model API of callbridge's agent: realtime (default), live "
                        "(GPT-Live: CALLBRIDGE_MODEL=gpt-live-1.1, CALLBRIDGE_LIVE_URL at the "
                        "echo upstream run with --api live), or both, one after the other at "
                        "each step, compared (CPU per call, live/realtime)")
    ramp = p.add_argument_group("the ramp")
    ramp.add_argument("--steps", type=_steps, default=None,
                      help=f"numbers of concurrent calls (default {DEFAULT_STEPS})")
    ramp.add_argument("--hold", type=float, default=None,
                      help="seconds measured at each step (default 20)")
    ramp.add_argument("--rate", type=float, default=50.0, help="new calls per second (50)")
    ramp.add_argument("--settle", type=float, default=None,
                      help="seconds between the last call opening and the measurement (2)")
    ramp.add_argument("--budget-ms", type=float, default=5.0,
                      help="p99 bridge-added latency budget; with --audio pcm16, p99 "
                           "load-added (5 ms)")
    ramp.add_argument("--loss-ms", type=float, default=1000.0,
                      help="a frame not echoed within this is lost (1000)")
    ramp.add_argument("--late-ms", type=float, default=None,
                      help="a frame echoed after this round trip is late (50; 200 with "
                           "--audio pcm16, where libsoxr alone holds a frame back up to about "
                           "150 ms over the round trip, so 50 would count most frames late)")
    ramp.add_argument("--no-stop", action="store_true",
                      help="run every step even after the budget broke")
    ramp.add_argument("--beyond", type=int, default=1,
                      help="steps still measured after the first one over budget (1)")
    ramp.add_argument("--no-relay", action="store_true", help="skip the relay baseline")
    ramp.add_argument("--quiet-cpu", type=float, default=25.0,
                      help="before and during a window, other processes on this machine may use "
                           "at most this %% of a core, else wait / measure again (25)")
    ramp.add_argument("--quiet-wait", type=float, default=120.0,
                      help="seconds to wait for the machine to quiet down before a window (120)")
    ramp.add_argument("--retries", type=int, default=2,
                      help="windows measured again when other load disturbed them (2)")
    ramp.add_argument("--progress", type=float, default=5.0,
                      help="seconds between progress lines during a hold (5)")
    ramp.add_argument("--response-frames", type=int, default=100,
                      help="frames per echoed response (100 = 2 s)")
    hook = p.add_argument_group("the webhook test")
    hook.add_argument("--webhook-rate", type=float, default=50.0, help="webhooks per second")
    hook.add_argument("--webhook-seconds", type=float, default=None,
                      help="how long (default 10; 0 skips the test)")
    server = p.add_argument_group("the server and the machine")
    server.add_argument("--record", choices=["none", "sqlite"], default="none",
                        help="callbridge's call record: DATABASE_URL=none or a temp SQLite")
    server.add_argument("--no-pin", dest="pin", action="store_false",
                        help="do not pin processes to cores with taskset")
    server.add_argument("--server-cpu", type=int, default=0, help="the server's core (0)")
    server.add_argument("--harness-cpu", type=int, default=1, help="the harness's core (1)")
    server.add_argument("--profile-at", type=_steps, default=[],
                        help="py-spy the server during the hold at these N (e.g. 300)")
    out = p.add_argument_group("output")
    out.add_argument("--out", type=Path, default=None,
                     help="where the table, JSON and PNG go (default docs/benchmarks; "
                          "none with --smoke)")
    out.add_argument("--stem", default=None,
                     help="file name stem (load → load.txt, …; default load, load-pcm16 "
                          "with --audio pcm16, load-live with --api live or both)")
    other = p.add_argument_group("another bridge (see docs/benchmarks.md)")
    other.add_argument("--target-url", default=None,
                       help="http(s)://host:port (Twilio flow: POST /voice, TwiML, stream) or "
                            "ws(s)://host:port/path (dial the media socket directly)")
    other.add_argument("--target-name", default="target", help="its name in the table")
    other.add_argument("--target-pid", type=int, default=None,
                       help="its process id, for CPU and RSS")
    other.add_argument("--auth-token", default="", help="the Twilio auth token it checks")
    other.add_argument("--public-url", default=None,
                       help="the public URL it signs against (default --target-url)")
    other.add_argument("--webhook-path", default="/voice")
    other.add_argument("--param", type=_param, action="append", default=[],
                       help="a customParameter for `start` (NAME=VALUE, repeatable)")
    other.add_argument("--healthz-path", default="/healthz",
                       help="its health URL for the loop-lag probe ('' for none)")
    other.add_argument("--echo-port", type=int, default=0,
                       help="the echo upstream's port (0 = any; fix it for another bridge)")
    other.add_argument("--target-wait", type=float, default=300.0,
                       help="seconds to wait for the target to listen")
    return p


def main(argv: list[str] | None = None) -> int:
    p = parser()
    args = p.parse_args(argv)
    pcm16 = args.audio == "pcm16"
    if args.api != "realtime" and pcm16:
        p.error("--api live and both carry μ-law only (GPT-Live's session is audio/pcmu here)")
    if args.api == "both" and args.target_url:
        p.error("--api both starts its own two servers: it cannot measure --target-url")
    args.late_ms = (200.0 if pcm16 else 50.0) if args.late_ms is None else args.late_ms
    args.stem = args.stem or ("load-pcm16" if pcm16 else
                              "load" if args.api == "realtime" else "load-live")
    if args.smoke:
        args.steps = args.steps or [5]
        args.hold = 3.0 if args.hold is None else args.hold
        args.settle = 0.5 if args.settle is None else args.settle
        args.webhook_seconds = 1.0 if args.webhook_seconds is None else args.webhook_seconds
        args.quiet_wait = 0.0  # CI: report other load, do not wait for it
        args.retries = 0
    else:
        args.steps = args.steps or _steps(DEFAULT_STEPS)
        args.hold = 20.0 if args.hold is None else args.hold
        args.settle = 2.0 if args.settle is None else args.settle
        args.webhook_seconds = 10.0 if args.webhook_seconds is None else args.webhook_seconds
        args.out = args.out or REPO / "docs" / "benchmarks"
    try:
        return asyncio.run(run(args))
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("interrupted; every process the harness started has been stopped", file=sys.stderr)
        return 130
    except RuntimeError as exc:
        print(f"load run failed: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

