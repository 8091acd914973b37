"""Pictures: valid PNG/SVG of the requested size, and Chinese labels that are
drawn, not empty boxes (the label's ink is compared with a missing glyph's)."""

from __future__ import annotations

import os
import struct
import subprocess
import sys

import pytest

from .helpers import make_text, skip_or_fail, write_config

MISSING = "\U0010fffd"  # a private-use code point no font draws: its render is the empty box


@pytest.fixture(scope="module")
def plots():
    try:
        from streamcount import plots
    except ImportError:  # pragma: no cover
        skip_or_fail("streamcount.plots cannot be imported")
    try:
        plots.cjk_font()
    except plots.PlotError as exc:
        skip_or_fail(str(exc))  # matplotlib or a CJK font missing: `make plot-tools`
    return plots


def cli(*args: object) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "streamcount", *map(str, args)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


@pytest.fixture(scope="module")
def config(tmp_path_factory):
    import random

    tmp = tmp_path_factory.mktemp("plots")
    inbox = tmp / "inbox"
    inbox.mkdir()
    rng = random.Random(3)
    now = __import__("time").time()
    for d in range(6):
        path = inbox / f"{d}.txt"
        path.write_text(make_text(rng, paragraphs=4), encoding="utf-8")
        os.utime(path, (now - d * 86400, now - d * 86400))
    config = write_config(tmp / "config.toml", inbox, tmp / "db.sqlite", time="mtime")
    assert cli("ingest", inbox, "--config", config).returncode == 0
    return config


def png_size(path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


@pytest.mark.parametrize("kind", ["zipf", "trend", "rising"])
def test_plots_are_valid_png_and_svg_of_the_requested_size(plots, config, tmp_path, kind):
    words = ["经济", "北京"] if kind == "trend" else []
    extra = ["--window", "3d", "--against", "3d", "--min-count", "1"] if kind == "rising" else []
    png, svg = tmp_path / "p.png", tmp_path / "p.svg"
    for out in (png, svg):
        done = cli("plot", kind, *words, "-o", out, "--width", 640, "--height", 480,
                   *extra, "--config", config)  # fmt: skip
        assert done.returncode == 0, done.stderr
    assert png_size(png) == (640, 480)
    text = svg.read_text()
    assert text.startswith("<?xml") and "<svg" in text
    assert 'width="460.8pt" height="345.6pt"' in text  # 640 x 480 px at 100 dpi


def _ink(plots, tmp_path, label: str):
    from matplotlib.image import imread

    out = tmp_path / f"{len(os.listdir(tmp_path))}.png"
    plots.plot_rising([{"token": label, "g2": 1.0}], out, 300, 150)
    return imread(out)


def test_word_labels_are_drawn_not_empty_boxes(plots, tmp_path):
    word = _ink(plots, tmp_path, "经济")
    with pytest.warns(UserWarning, match="missing from font"):
        boxes = _ink(plots, tmp_path, MISSING * 2)
    other = _ink(plots, tmp_path, "北京")
    assert (word != boxes).any(), "the label renders as the missing-glyph boxes"
    assert (word != other).any(), "two different words render the same (empty boxes)"


def test_plot_without_matplotlib_says_what_to_install(tmp_path, config):
    code = (
        "import sys; sys.modules['matplotlib'] = None; from streamcount.__main__ import main; "
        "sys.argv = ['streamcount', 'plot', 'zipf', '-o', sys.argv[1], '--config', sys.argv[2]]; "
        "main()"
    )
    done = subprocess.run([sys.executable, "-c", code, tmp_path / "z.png", config],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 2
    expected = "streamcount: plots need matplotlib: pip install 'streamcount[plot]'"
    assert done.stderr.strip() == expected
