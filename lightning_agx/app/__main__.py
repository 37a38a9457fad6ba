"""``python -m lightning_agx.app`` / ``lightning-agx-app``: start the explorer on this machine.

Serves on 127.0.0.1 unless ``--listen`` says otherwise; a public share link only with ``--share``; Gradio's
analytics are off and nothing is logged to W&B. Runs behind `lightning_agx.door`: a bad option, an unknown
model or method, or a port already in use is one line and exit 2 (``--debug`` shows the traceback). Once
serving it says its address and work folder on stderr; Ctrl-C and SIGTERM both close the server and remove
the work folder (Gradio's cache inside it), then exit 0.
"""
from __future__ import annotations

import argparse
import os
import signal
import socket
import sys

from ..door import ArgumentParser, entry_point
from ..errors import UserError


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = ArgumentParser(prog="lightning-agx-app", description="The lightning_agx explorer (Gradio).")
    parser.add_argument("--model", default="toysounds", help="any name lightning_agx.load_model takes (default: "
                        "the embedded ToySounds model)")
    parser.add_argument("--method", default=None, help="explanation method (default: audiogenx_amortized where the "
                        "model has an amortised explainer, else audiogenx)")
    parser.add_argument("--device", default="cpu", help="torch device of the model (cpu, cuda)")
    parser.add_argument("--port", type=_port, default=7860, help="port (default 7860; 0: the first free one from "
                        "7860)")
    parser.add_argument("--listen", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine "
                        "only; 0.0.0.0 serves the network)")
    parser.add_argument("--share", action="store_true", help="also open a public gradio.live link (off by default)")
    parser.add_argument("--threads", type=_threads, default=None, help="torch CPU threads (default: torch's)")
    return parser.parse_args(argv)


def _main(argv: list[str]) -> None:
    """Parse, check the port, load the explorer, serve until Ctrl-C or SIGTERM, then remove the work folder."""
    args = parse_args(argv)
    if args.port:
        check_port(args.listen, args.port)  # before the model loads
    import torch
    if args.threads:
        torch.set_num_threads(args.threads)
    from .explorer import Explorer
    from .ui import build_app, launch
    explorer = Explorer(args.model, method=args.method, device=args.device)
    try:
        signal.signal(signal.SIGTERM, _interrupt)  # the same shutdown as Ctrl-C: Gradio closes, we clean up
        # Gradio's cache and uploads, read as the page is built: inside the work folder, removed with it
        os.environ["GRADIO_TEMP_DIR"] = str(explorer.workdir / "gradio")
        app = build_app(explorer)
        try:
            _, url, _ = launch(app, listen=args.listen, port=args.port or None, share=args.share, block=False)
        except OSError as error:  # the port was taken since the check, or no free one from 7860
            raise UserError(f"cannot serve on {args.listen}:{args.port or '7860-7959'} ({_brief(error)}); choose a "
                            "free --port") from None
        print(f"lightning_agx explorer: model {explorer.tag.name}, method {explorer.method}; serving {url} "
              f"(work folder {explorer.workdir}, removed on exit)", file=sys.stderr, flush=True)
        app.block_thread()
    finally:
        explorer.close()


main = entry_point(_main, prog="lightning-agx-app")


def check_port(listen: str, port: int) -> None:
    """A one-line `UserError` when `listen`:`port` cannot be served (in use, or not an address of this machine)."""
    try:
        family = socket.getaddrinfo(listen, port, type=socket.SOCK_STREAM)[0][0]
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server binds: TIME_WAIT is free
            probe.bind((listen, port))
    except OSError as error:
        raise UserError(f"cannot serve on {listen}:{port} ({_brief(error)}): the port is in use or the address "
                        "is not this machine's; choose another --port (0: the first free one from 7860) or "
                        "--listen") from None


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (0..65535; 0: a free one)") from None
    if not 0 <= port < 65536:
        raise argparse.ArgumentTypeError(f"{port} is not a port number (0..65535; 0: a free one)")
    return port


def _threads(text: str) -> int:
    try:
        threads = int(text)
    except ValueError:
        threads = 0
    if threads < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of threads (a whole number >= 1)")
    return threads


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt  # Gradio's serving loop closes the server on it, as on Ctrl-C


def _brief(error: OSError) -> str:
    return " ".join((error.strerror or str(error)).split())[:160]


if __name__ == "__main__":
    main()
