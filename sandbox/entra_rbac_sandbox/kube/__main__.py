"""`python -m entra_rbac_sandbox.kube`: the sandbox API server as a process.

Starts the server, writes the admin kubeconfig, prints one line
`apiserver ready: kubeconfig=PATH url=URL` and serves until interrupted. Holds no API logic.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
from pathlib import Path

from .server import ApiServer


def _parser() -> argparse.ArgumentParser:
    description = "Run the sandbox Kubernetes API server on loopback until interrupted."
    parser = argparse.ArgumentParser(prog="python -m entra_rbac_sandbox.kube", description=description)
    parser.add_argument("--port", type=int, default=0, help="loopback port (0: any free port)")
    parser.add_argument(
        "--kubeconfig", type=Path, default=Path("sandbox/kubeconfig"), help="where to write it"
    )
    parser.add_argument(
        "--no-tls", action="store_true", help="serve plain HTTP (kubectl then sends no token)"
    )
    parser.add_argument(
        "--token-file", type=Path, help='extra identities: token,user,uid,"group1,group2" lines'
    )
    return parser


async def _serve(args: argparse.Namespace) -> None:
    cert_dir = args.kubeconfig.resolve().parent / "pki"
    server = ApiServer(port=args.port, tls=not args.no_tls, cert_dir=cert_dir, token_file=args.token_file)
    async with server:
        path = server.write_kubeconfig(args.kubeconfig)
        print(f"apiserver ready: kubeconfig={path} url={server.url}", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()


def main() -> None:
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(_parser().parse_args()))


if __name__ == "__main__":
    main()
