"""`callbridge call` and `callbridge numbers`: the commands that talk to Twilio's REST API.

Owns turning those commands into REST requests against `CALLBRIDGE_TWILIO_API_URL` with the
account's credentials, and printing the results. Numbers are pointed at this server's public URL:
`/voice` for calls, `/twilio/status` for status callbacks, and an optional fallback URL.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from callbridge.config import Settings, load_settings
from callbridge.errors import ConfigError
from callbridge.server.outbound import place_call
from callbridge.server.twilio_rest import TwilioRest, TwilioRestError


def add_commands(commands: Any) -> None:
    """Add `call` and `numbers` to the CLI's subcommands."""
    call = commands.add_parser("call", help="place an outbound call with an agent")
    call.add_argument("to", help="the number to call, E.164 (e.g. +15551234567)")
    call.add_argument("--agent", help="the agent to use (default: the default agent)")
    call.add_argument("--from", dest="from_number",
                      help="the caller ID, one of your Twilio numbers (default: "
                           "CALLBRIDGE_CALLER_ID)")
    call.add_argument("--no-amd", action="store_true",
                      help="do not detect answering machines (the agent speaks at once)")
    numbers = commands.add_parser("numbers", help="list, buy or configure Twilio numbers")
    actions = numbers.add_subparsers(dest="numbers_action", required=True)
    actions.add_parser("list", help="list the account's numbers and where they point")
    buy = actions.add_parser("buy", help="buy a number and point it at this server")
    buy.add_argument("--country", default="US")
    buy.add_argument("--area-code")
    buy.add_argument("--contains")
    buy.add_argument("--number", help="buy exactly this available number")
    configure = actions.add_parser("configure", help="point an owned number at this server")
    configure.add_argument("number", help="the number, E.164")


def run(args: argparse.Namespace) -> int:
    settings = load_settings(serving=False)
    if not settings.twilio_account_sid or not settings.twilio_auth_token:
        raise ConfigError("TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN are needed to use Twilio's "
                          "REST API")
    if settings.public_url == Settings.public_url:
        raise ConfigError("CALLBRIDGE_PUBLIC_URL is not set: Twilio must reach this server")
    try:
        return asyncio.run(_run(args, settings))
    except TwilioRestError as exc:
        raise ConfigError(f"Twilio refused: {exc}") from exc


async def _run(args: argparse.Namespace, settings: Settings) -> int:
    async with TwilioRest(settings.twilio_api_url, settings.twilio_account_sid,
                          settings.twilio_auth_token) as rest:
        if args.command == "call":
            call = await place_call(rest, settings, args.to, agent=args.agent,
                                    from_number=args.from_number,
                                    detect_machine=not args.no_amd)
            print(f"calling {args.to}: {call.sid} ({call.status})")
            return 0
        return await _numbers(rest, settings, args)


async def _numbers(rest: TwilioRest, settings: Settings, args: argparse.Namespace) -> int:
    voice_url = f"{settings.public_url}/voice"
    status_callback = f"{settings.public_url}/twilio/status"
    fallback = settings.fallback_url or None
    if args.numbers_action == "list":
        for number in await rest.list_numbers():
            print(f"{number.phone_number:<16} {number.sid}  voice: {number.voice_url or '-'}"
                  f"  fallback: {number.voice_fallback_url or '-'}")
        return 0
    if args.numbers_action == "buy":
        candidates = [args.number] if args.number else await rest.find_available(
            args.country, area_code=args.area_code, contains=args.contains, limit=1)
        if not candidates:
            raise ConfigError("no number is available with those criteria")
        bought = await rest.buy_number(candidates[0], voice_url=voice_url,
                                       voice_fallback_url=fallback,
                                       status_callback=status_callback)
        print(f"bought {bought.phone_number} ({bought.sid}), calls go to {voice_url}")
        return 0
    owned = [n for n in await rest.list_numbers() if n.phone_number == args.number]
    if not owned:
        raise ConfigError(f"{args.number} is not one of the account's numbers")
    configured = await rest.configure_number(owned[0].sid, voice_url=voice_url,
                                             voice_fallback_url=fallback,
                                             status_callback=status_callback)
    print(f"{configured.phone_number} now sends calls to {voice_url}")
    return 0
