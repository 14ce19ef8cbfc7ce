"""Stage start-up (``stages/_common.py``): one-line errors, and SIGTERM leaves nothing behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

STAGE = textwrap.dedent('''
    import sys, time
    sys.path.insert(0, {stages!r})
    from _common import run

    def main(params, argv):
        from pathlib import Path
        from artstyle.io import atomic_dir
        if argv[0] == "fail":
            from artstyle.data.catalogue import DatasetError
            raise DatasetError("class 'Cubism' has 1 image; at least 3 are needed")
        with atomic_dir(Path(argv[1]) / "out") as tmp:
            (tmp / "half.bin").write_bytes(b"x" * 1000)
            print("ready", flush=True)
            time.sleep(60)
        return "never"

    run("demo", main)
''')


def _script(tmp_path: Path) -> Path:
    path = tmp_path / "demo_stage.py"
    path.write_text(STAGE.format(stages=str(REPO / "stages")))
    return path


def test_sigterm_removes_the_half_written_output(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    proc = subprocess.Popen([sys.executable, str(_script(tmp_path)), "wait", str(work)],
                            cwd=REPO, stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO / "src")})
    try:
        assert proc.stdout.readline().strip() == "ready"
        assert len(list(work.iterdir())) == 1           # the temporary folder exists
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 128 + signal.SIGTERM
    finally:
        proc.kill()
    assert list(work.iterdir()) == []                   # nothing half-written is left


def test_expected_failure_is_one_line_with_status_2(tmp_path):
    res = subprocess.run([sys.executable, str(_script(tmp_path)), "fail"], cwd=REPO,
                         capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(REPO / "src")})
    assert res.returncode == 2
    assert res.stderr.strip().splitlines()[-1] == (
        "demo: class 'Cubism' has 1 image; at least 3 are needed")
    assert "Traceback" not in res.stderr
