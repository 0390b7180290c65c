"""Run the sandbox standalone: python -m sandbox --port 8081."""

from __future__ import annotations

import argparse
import asyncio
import logging

from sandbox.server import SandboxServer


async def _serve(args: argparse.Namespace) -> None:
    server = SandboxServer(args.host, args.port, flood_control=not args.no_flood_control,
                           bot_username=args.bot_username, bot_first_name=args.bot_first_name)
    await server.start()
    print(f"Wenming sandbox on {server.url}")
    print(f"  bot:  ApplicationBuilder().base_url('{server.api_base_url}')"
          f".base_file_url('{server.file_base_url}')")
    print(f"  web:  {server.url}/")
    try:
        await asyncio.Event().wait()
    finally:
        await server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m sandbox", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--no-flood-control", action="store_true",
                        help="disable the emulated 429 flood limits")
    parser.add_argument("--bot-username", default="wenming_bot")
    parser.add_argument("--bot-first-name", default="文明督查")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args()
    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        asyncio.run(_serve(args))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
