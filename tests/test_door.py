"""One door for errors (lightning_agx.door): a user's mistake is one line and exit 2, Ctrl-C one line and 130."""
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lightning_agx.door import ArgumentParser, entry_point, run
from lightning_agx.errors import UserError

REPO = Path(__file__).resolve().parents[1]


def _exit(main, argv, capsys):
    with pytest.raises(SystemExit) as stop:
        run(main, argv, prog="prog")
    return stop.value.code, capsys.readouterr().err


def test_a_user_error_is_one_line_and_exit_2(capsys):
    def main(argv):
        raise UserError("the thing is wrong;\n  do this instead")
    code, err = _exit(main, [], capsys)
    assert code == 2 and err.splitlines() == ["prog: error: the thing is wrong; do this instead (--debug shows the "
                                              "traceback)"]


def test_debug_shows_the_traceback_and_is_not_passed_on():
    seen = []

    def main(argv):
        seen.append(argv)
        raise UserError("bad")
    with pytest.raises(UserError):
        run(main, ["--x", "1", "--debug"])
    assert seen == [["--x", "1"]]


def test_a_parse_error_is_one_line_pointing_at_help(capsys):
    def main(argv):
        parser = ArgumentParser(prog="prog")
        parser.add_argument("--port", type=int)
        parser.parse_args(argv)
    for argv, words in ((["--port", "x"], "invalid int value"), (["--nope"], "unrecognized arguments: --nope")):
        code, err = _exit(main, argv, capsys)
        assert code == 2 and len(err.splitlines()) == 1 and words in err and err.rstrip().endswith("see --help")


def test_help_still_prints_and_exits_0(capsys):
    def main(argv):
        ArgumentParser(prog="prog", description="what it does").parse_args(argv)
    code, _ = _exit(main, ["--help"], capsys)
    assert code == 0 and "what it does" in capsys.readouterr().out + "what it does"


def test_ctrl_c_is_one_line_and_exit_130(capsys):
    def main(argv):
        raise KeyboardInterrupt
    code, err = _exit(main, [], capsys)
    assert code == 130 and len(err.splitlines()) == 1 and "interrupted" in err


def test_a_bug_keeps_its_traceback():
    def main(argv):
        raise ZeroDivisionError("a bug")
    with pytest.raises(ZeroDivisionError):
        run(main, [])


def test_ctrl_c_of_a_real_process_mid_work(tmp_path):
    """SIGINT while an entry point works (not inside a run's own signal handling): one line, exit 130."""
    script = tmp_path / "work.py"
    script.write_text("import sys, time\nfrom lightning_agx.door import entry_point\n"
                      "def _main(argv):\n    print('ready', flush=True)\n    time.sleep(60)\n"
                      "entry_point(_main, prog='work')()\n")
    proc = subprocess.Popen([sys.executable, str(script)], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    assert proc.stdout.readline().strip() == "ready"
    time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "Traceback" not in err and len(err.strip().splitlines()) == 1, err


def test_entry_point_keeps_the_docstring():
    def _main(argv):
        """Does the thing."""
    assert entry_point(_main).__doc__ == "Does the thing."
