"""``python -m lightning_agx.app`` / ``lightning-agx-app``: start the explorer on this machine.

Serves on 127.0.0.1 unless ``--listen`` says otherwise; a public share link only with ``--share``; Gradio's
analytics are off and nothing is logged to W&B.
"""
from __future__ import annotations

import argparse
import sys

from ..errors import UserError


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="lightning-agx-app", description="The lightning_agx explorer (Gradio).")
    parser.add_argument("--model", default="toysounds", help="any name lightning_agx.load_model takes (default: "
                        "the embedded ToySounds model)")
    parser.add_argument("--method", default=None, help="explanation method (default: audiogenx_amortized where the "
                        "model has an amortised explainer, else audiogenx)")
    parser.add_argument("--device", default="cpu", help="torch device of the model (cpu, cuda)")
    parser.add_argument("--port", type=int, default=7860, help="port (default 7860; 0: a free one)")
    parser.add_argument("--listen", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine "
                        "only; 0.0.0.0 serves the network)")
    parser.add_argument("--share", action="store_true", help="also open a public gradio.live link (off by default)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if not 0 <= args.port < 65536:
        print(f"error: --port must be 0..65535; got {args.port}", file=sys.stderr)
        raise SystemExit(2)
    import torch
    if args.threads:
        torch.set_num_threads(args.threads)
    from .explorer import Explorer
    from .ui import build_app, launch
    try:
        explorer = Explorer(args.model, method=args.method, device=args.device)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    print(f"lightning_agx explorer: model {explorer.tag.name}, method {explorer.method}; "
          f"http://{args.listen}:{args.port or '<free port>'}", file=sys.stderr, flush=True)
    try:
        launch(build_app(explorer), listen=args.listen, port=args.port or None, share=args.share)
    finally:
        explorer.close()


if __name__ == "__main__":
    main()
