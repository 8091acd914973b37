"""The systemd unit: verified and security-rated by systemd's own analyzer."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

UNIT = Path(__file__).resolve().parent.parent / "systemd" / "streamcount.service"
ANALYZE = shutil.which("systemd-analyze")
pytestmark = pytest.mark.skipif(
    ANALYZE is None, reason="systemd-analyze is not installed (make test installs it where it can)"
)


@pytest.fixture
def unit(tmp_path):
    """The unit, with ExecStart pointing at this checkout's streamcount so verify can find it."""
    streamcount = Path(sys.executable).parent / "streamcount"
    text = UNIT.read_text().replace("/opt/streamcount/bin/streamcount", str(streamcount))
    path = tmp_path / "streamcount.service"
    path.write_text(text)
    return path


def test_unit_verifies_clean(unit):
    result = subprocess.run(
        [ANALYZE, "verify", str(unit)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "streamcount.service" not in result.stderr, result.stderr


def test_unit_security_rating_at_most_2(unit):
    result = subprocess.run(
        [ANALYZE, "security", "--offline=yes", "--no-pager", str(unit)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    found = re.search(r"Overall exposure level for streamcount\.service: ([\d.]+)", result.stdout)
    assert found, result.stdout + result.stderr
    assert float(found.group(1)) <= 2.0, result.stdout


def test_unit_runs_streamcount_as_a_notify_service():
    text = UNIT.read_text()
    assert "Type=notify" in text and "WatchdogSec=" in text
    assert "ExecStart=/opt/streamcount/bin/streamcount run --config" in text
    assert "DynamicUser=yes" in text and "StateDirectory=streamcount" in text
