"""``python -m lightning_agx.app`` in a subprocess: a user's mistake is one line on stderr and exit 2, a port in
use too; SIGTERM closes the server and removes the work folder (Gradio's cache and uploads in it), as Ctrl-C."""
from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def launcher(tmp_path: Path, *args: str, **kwargs) -> subprocess.Popen:
    """The launcher with its temporary folders under `tmp_path` (nothing can be left elsewhere)."""
    env = {**os.environ, "TMPDIR": str(tmp_path), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "lightning_agx.app", *args], cwd=REPO, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs)


def one_error_line(proc: subprocess.Popen) -> str:
    _, err = proc.communicate(timeout=300)
    lines = err.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and "error:" in lines[0], err[-2000:]
    return lines[0]


@pytest.mark.parametrize("args, words", [
    (["--port", "70000"], "argument --port: 70000 is not a port number"),
    (["--port", "http"], "argument --port: 'http' is not a port number"),
    (["--port", "0", "--model", "no-such-model"], "unknown model 'no-such-model'"),
    (["--port", "0", "--model", "debug", "--method", "no-such-method"], "unknown method 'no-such-method'; available"),
])
def test_a_bad_option_is_one_line_and_exit_2(tmp_path, args, words):
    assert words in one_error_line(launcher(tmp_path, *args))


def test_a_port_in_use_is_one_line_and_exit_2(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        line = one_error_line(launcher(tmp_path, "--model", "debug", "--port", str(port)))
    assert f"cannot serve on 127.0.0.1:{port} (Address already in use)" in line and "--port" in line
    assert not list(tmp_path.glob("lightning_agx_app_*")), "no work folder is left behind"


def read_stderr(proc: subprocess.Popen) -> tuple[list[str], threading.Thread]:
    """The launcher's stderr lines as they come, read in a thread (a silent launcher cannot hang the test)."""
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stderr.readline, "")), daemon=True)
    reader.start()
    return lines, reader


def wait_for(lines: list[str], proc: subprocess.Popen, words: str, timeout: float = 240) -> str:
    deadline = time.time() + timeout
    while time.time() < deadline:
        found = next((line for line in lines if words in line), None)
        if found:
            return found
        assert proc.poll() is None, "".join(lines)
        time.sleep(0.2)
    raise AssertionError(f"the launcher did not say {words!r} in {timeout} s: {''.join(lines)}")


def test_sigterm_closes_the_server_and_removes_the_work_folder(tmp_path):
    import httpx
    proc = launcher(tmp_path, "--model", "debug", "--port", "0")
    lines, reader = read_stderr(proc)
    try:
        line = wait_for(lines, proc, "serving")
        found = re.search(r"serving (http://127\.0\.0\.1:\d+/) \(work folder (\S+), removed on exit\)", line)
        assert found, line
        url, workdir = found.group(1), Path(found.group(2))
        assert workdir.is_dir() and workdir.parent == tmp_path
        uploaded = httpx.post(f"{url}gradio_api/upload", files={"files": ("a.txt", b"hello")}).json()[0]
        assert Path(uploaded).is_relative_to(workdir / "gradio")  # Gradio's cache is in the work folder
        too_big = httpx.post(f"{url}gradio_api/upload", files={"files": ("big.bin", bytes(11 * 2 ** 20))})
        assert too_big.status_code == 413  # uploads are bounded (ui.MAX_UPLOAD)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=120)
    finally:
        proc.kill()
    reader.join(timeout=30)
    assert proc.returncode == 0 and "Traceback" not in "".join(lines), "".join(lines)[-2000:]
    assert not workdir.exists() and not list(tmp_path.glob("lightning_agx_app_*"))
