"""The explorer app's speed as a user meets it: cold start to first explanation, then interval updates, edits,
warm explanations and a refinement, all over HTTP with gradio_client.

    python benchmarks/app_speed.py [--model toysounds] [--threads 2] [--repeats 10] [--out FILE]

Cold start is measured from launching ``python -m lightning_agx.app`` in a fresh process (imports, model and
explainer loading, the server) to the first explanation's reply. Targets (issue 13): first explanation under
10 s on 2 cores with the amortised method; interval update under 0.2 s.
"""
from __future__ import annotations

import os
import platform
import socket
import statistics
import subprocess
import sys
import time

from benchmark_output import print_table, whole, write_result  # benchmarks/benchmark_output.py, beside this script
from lightning_agx.door import ArgumentParser, entry_point

PROMPTS = ["a knock followed by a siren", "a loud beep", "a chirp and a hiss", "a rumble followed by a drip"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def connect(url: str, server: subprocess.Popen, deadline: float):
    from gradio_client import Client
    while time.perf_counter() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the app exited with code {server.returncode} before serving")
        try:
            return Client(url, verbose=False)
        except Exception:  # noqa: BLE001  not serving yet
            time.sleep(0.05)
    raise TimeoutError(f"the app did not serve {url} in time")


def check_app_arguments(model: str, method: str | None) -> None:
    """The model and method the app is started with, checked here: the app's own error would only show as
    'the app exited with code 2 before serving'."""
    from lightning_agx.models.registry import check_model_name
    check_model_name(model)
    if method is not None:
        from lightning_agx.methods import check_methods
        check_methods([method])


def timed(fn, repeats: int) -> list[float]:
    out = []
    for i in range(repeats):
        start = time.perf_counter()
        fn(i)
        out.append(time.perf_counter() - start)
    return out


def _main(argv: list[str]) -> None:
    parser = ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="toysounds")
    parser.add_argument("--method", default=None)
    parser.add_argument("--threads", type=whole(1), default=2)
    parser.add_argument("--repeats", type=whole(1), default=10)
    parser.add_argument("--out", default="outputs/benchmarks/app_speed.json")
    args = parser.parse_args(argv)
    check_app_arguments(args.model, args.method)
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    command = [sys.executable, "-m", "lightning_agx.app", "--model", args.model, "--port", str(port),
               "--threads", str(args.threads)] + (["--method", args.method] if args.method else [])
    begin = time.perf_counter()
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              env={**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"})
    try:
        client = connect(url, server, begin + 300)
        serving = time.perf_counter() - begin
        client.predict(PROMPTS[0], 0, api_name="/explain")
        first = time.perf_counter() - begin
        interval = timed(lambda i: client.predict(0.1 * (i % 10), 2.0, api_name="/interval"), args.repeats * 2)
        edit = timed(lambda i: client.predict(["05 siren"], 0.0, 2.0, [0.1, 0.9][i % 2], api_name="/edit"),
                     args.repeats)
        explain = timed(lambda i: client.predict(PROMPTS[i % len(PROMPTS)], i + 1, api_name="/explain"),
                        args.repeats)
        client.predict(PROMPTS[0], 0, api_name="/explain")
        refine = timed(lambda i: client.predict(api_name="/refine"), 1)
    finally:
        server.terminate()
        server.wait(30)
    rows = [["cold start: process launch to serving", round(serving, 2), "", ""],
            ["cold start: process launch to first explanation", round(first, 2), "< 10", ""]]
    for name, values, target in (("interval update (Eq. 7)", interval, "< 0.2"), ("edit + regenerate (Eq. 15)", edit, ""),
                                 ("explain, warm", explain, ""), ("refine (per-prompt AudioGenX)", refine, "")):
        rows.append([name, round(statistics.median(values), 3), target, f"median of {len(values)}"])
    print(f"\nExplorer app speed: model={args.model} threads={args.threads} ({platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs), over HTTP with gradio_client\n")
    print_table(["what", "seconds", "target (s)", "note"], rows)
    write_result({"model": args.model, "method": args.method, "threads": args.threads, "cpus": os.cpu_count(),
                  "serving_s": serving, "first_explanation_s": first, "interval_s": interval, "edit_s": edit,
                  "explain_warm_s": explain, "refine_s": refine}, args.out)


main = entry_point(_main)  # lightning_agx.door: a bad option or value is one line and exit 2

if __name__ == "__main__":
    main()
