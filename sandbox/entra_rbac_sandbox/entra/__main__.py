"""`python -m entra_rbac_sandbox.entra`: the sandbox Entra directory as a process.

Serves the directory file until interrupted (SIGINT/SIGTERM), writes `entra.env` (the
`ENTRA_RBAC_*` settings, secret included, readable by the owner only) in the state directory and
prints one line `entra ready: url=URL graph=URL tenant=ID client_id=ID ca_file=PATH env=PATH`.
A bad directory file stops it at start with the reason. Holds no Graph or token logic.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from pathlib import Path

from .directory import DirectoryFileError
from .server import CREDENTIALS, EntraSandbox


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m entra_rbac_sandbox.entra", description=__doc__)
    parser.add_argument("--directory", type=Path, required=True, help="the directory YAML file")
    parser.add_argument("--port", type=int, default=0, help="loopback port (0: any free port)")
    parser.add_argument(
        "--state-dir", type=Path, default=Path("sandbox/entra"), help="where the CA, keys and entra.env go"
    )
    parser.add_argument("--tenant-id", help="tenant GUID (default: a new one)")
    parser.add_argument("--client-id", help="the application's client id (default: a new one)")
    parser.add_argument("--client-secret", help="its secret (default: a new one)")
    parser.add_argument("--credential", choices=CREDENTIALS, default="client-secret", help="for entra.env")
    return parser


async def _serve(args: argparse.Namespace) -> None:
    server = EntraSandbox(
        args.directory,
        port=args.port,
        state_dir=args.state_dir,
        tenant_id=args.tenant_id,
        client_id=args.client_id,
        client_secret=args.client_secret,
    )
    async with server:
        env_file = server.write_env_file(args.state_dir / "entra.env", args.credential)
        print(
            f"entra ready: url={server.url} graph={server.graph_url} tenant={server.tenant_id} "
            f"client_id={server.client_id} ca_file={server.ca_file} env={env_file}",
            flush=True,
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()


def main() -> None:
    try:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(_serve(_parser().parse_args()))
    except (DirectoryFileError, ValueError) as error:
        sys.exit(f"entra sandbox: {error}")


if __name__ == "__main__":
    main()
