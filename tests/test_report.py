"""`veil report`: the HTML access page — content, escaping, and a real headless Chromium.

The browser tests need Debian's `chromium` (`.ci/run` installs it). Without it they skip,
except when CI=true, where they fail.
"""

from __future__ import annotations

import html
import shutil
import struct
import subprocess
import zlib
from collections.abc import Iterator
from pathlib import Path

import markupsafe
import pytest
from click.testing import CliRunner

from tests.pg import in_ci
from veil import access, model
from veil.api import check
from veil.cli import main
from veil.report import render_report

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "payments"
HOSTILE_CASE = ROOT / "tests" / "cases" / "hostile"
BROWSER_TIMEOUT_S = 120

#: Names that are markup: each must show as text, never run or render.
HOSTILE = """\
table `<script>alert(1)</script>`.t {
  id bigint
  `<img src=x onerror=alert(2)>` varchar(40)
}
purpose "</td><script>alert(3)</script>"
user "<b>bob</b>" { region "\\"><script>alert(4)</script>" }
project "<p>x" {
  purposes "</td><script>alert(3)</script>"
  members  "<b>bob</b>"
  sources  `<script>alert(1)</script>`.t
  documentation "<iframe src=//evil>"
}
mask `<img src=x onerror=alert(2)>` with constant("<script>alert(5)</script>") \\
  unless purpose "</td><script>alert(3)</script>"
filter `<script>alert(1)</script>`.t where `<img src=x onerror=alert(2)>` in user.region
"""


def checked(path: Path) -> model.Program:
    result = check([path])
    assert result.program is not None, [d.message for d in result.diagnostics if d.is_error]
    return result.program


@pytest.fixture(scope="module")
def hostile_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("hostile")
    (folder / "p.veil").write_text(HOSTILE, encoding="utf-8")
    return folder


def test_the_page_shows_every_user_project_table_and_approval() -> None:
    program = checked(EXAMPLE)
    page = render_report(program, title="examples/payments")
    assert page.startswith("<!DOCTYPE html>") and page.endswith("</html>\n")
    for user in program.users:
        assert f"<code>{user.name}</code>" in page
    for project in program.projects:
        assert f"<code>{project.name}</code>" in page
    width = len(access.contexts(program)) + 1
    for table in program.protected_tables:
        assert f'<th class="table-name" colspan="{width}"><code>{table.name}</code></th>' in page
    assert page.count('<span class="state-approved">approved</span>') == 5
    assert '<td class="hidden">hidden</td>' in page
    assert '<td class="masked">show_last(4)</td>' in page
    # bob's rows, with his region
    assert (
        str(markupsafe.escape('rows where region in ("AMER") and created_at >= now() - 90 days'))
        in page
    )
    assert page == render_report(program, title="examples/payments")  # deterministic


def test_pending_and_stale_purposes_are_shown(tmp_path: Path) -> None:
    folder = tmp_path / "repo"
    shutil.copytree(EXAMPLE, folder)
    projects = folder / "projects.veil"
    text = projects.read_text(encoding="utf-8")
    projects.write_text(text.replace("members  alice, bob, chris", "members  alice, bob"), "utf-8")
    page = render_report(checked(folder), title="x")
    assert '<span class="state-stale">stale</span>' in page
    assert "member `chris` removed" in html.unescape(page)


def test_the_page_loads_nothing_and_runs_nothing() -> None:
    page = render_report(checked(EXAMPLE), title="x")
    assert "default-src 'none'" in page
    for needle in ("<script", "<link", "<img", "<iframe", "http://", "https://", "src="):
        assert needle not in page


def test_hostile_names_are_text(hostile_dir: Path) -> None:
    page = render_report(checked(hostile_dir), title="<i>title</i>")
    for needle in ("<script", "<img", "<iframe", "<b>", "<p>", "<i>"):
        assert needle not in page
    assert str(markupsafe.escape("<script>alert(1)</script>.t")) in page
    assert str(markupsafe.escape("<b>bob</b>")) in page
    assert str(markupsafe.escape('constant("<script>alert(5)</script>")')) in page  # in a title
    assert str(markupsafe.escape('"><script>alert(4)</script>')) in page  # bob's region


def test_the_hostile_case_is_escaped() -> None:
    program = checked(HOSTILE_CASE)
    page = render_report(program, title=str(HOSTILE_CASE))
    names = [u.name for u in program.users] + [p.name for p in program.projects]
    names += [tb.name for tb in program.tables] + [
        c.name for tb in program.tables for c in tb.columns
    ]
    for name in names:
        assert str(markupsafe.escape(name)) in page, name
    assert "DROP TABLE x" in page and "O'Brien" not in page  # quotes become entities


def test_a_repository_without_users_or_projects(tmp_path: Path) -> None:
    (tmp_path / "p.veil").write_text("table t.x { id bigint; s text }\n", encoding="utf-8")
    page = render_report(checked(tmp_path), title="x")
    assert "No project is declared" in page and "No user is declared" in page
    (tmp_path / "p.veil").write_text("table t.x { id bigint; s text }\nuser u\n", "utf-8")
    assert "No table is protected by a veil policy" in render_report(checked(tmp_path), title="x")


def test_the_command(tmp_path: Path) -> None:
    out = tmp_path / "access.html"
    done = CliRunner().invoke(main, ["report", str(EXAMPLE), "-o", str(out)])
    assert done.exit_code == 0, done.output
    assert out.read_text(encoding="utf-8") == render_report(checked(EXAMPLE), title=str(EXAMPLE))
    broken = CliRunner().invoke(main, ["report", str(ROOT / "examples" / "broken")])
    assert broken.exit_code == 1


# ============================================================================ a real browser


def chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    if in_ci():
        pytest.fail("chromium is required when CI=true (.ci/run installs it)", pytrace=False)
    pytest.skip("chromium is not installed (apt-get install chromium)")


def run_browser(page: Path, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Headless Chromium on `page`; its console messages go to stderr (`:CONSOLE`)."""
    return subprocess.run(
        [
            chromium(),
            "--headless",
            "--disable-gpu",
            "--no-sandbox",
            "--no-first-run",
            f"--user-data-dir={profile}",
            "--enable-logging=stderr",
            "--v=0",
            "--window-size=1600,1200",
            *args,
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=BROWSER_TIMEOUT_S,
        check=False,
    )


def console_messages(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory, hostile_dir: Path) -> Iterator[Path]:
    folder = tmp_path_factory.mktemp("pages")
    (folder / "access.html").write_text(render_report(checked(EXAMPLE), title="p"), "utf-8")
    (folder / "hostile.html").write_text(render_report(checked(hostile_dir), title="h"), "utf-8")
    yield folder


def test_the_console_check_sees_errors(pages: Path, tmp_path: Path) -> None:
    """The check below can fail: a page that logs an error is caught."""
    bad = tmp_path / "bad.html"
    bad.write_text("<!DOCTYPE html><script>console.error('boom')</script>", encoding="utf-8")
    done = run_browser(bad, tmp_path / "profile", "--dump-dom")
    assert any("boom" in m for m in console_messages(done.stderr)), done.stderr[-2000:]


@pytest.mark.parametrize("name", ["access.html", "hostile.html"])
def test_the_page_loads_without_console_errors(pages: Path, tmp_path: Path, name: str) -> None:
    done = run_browser(pages / name, tmp_path / "profile", "--dump-dom")
    assert done.returncode == 0, done.stderr[-2000:]
    assert console_messages(done.stderr) == []
    dom = done.stdout
    assert '<table class="matrix">' in dom
    assert "<script" not in dom and "<img" not in dom  # the hostile names stayed text


def png_pixels(data: bytes) -> set[tuple[int, int, int]]:
    """The distinct RGB colours of an 8-bit, non-interlaced RGB or RGBA PNG (what Chromium
    writes), decoded with zlib alone."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    at, idat, header = 8, b"", b""
    while at < len(data):
        (size,) = struct.unpack(">I", data[at : at + 4])
        kind, body = data[at + 4 : at + 8], data[at + 8 : at + 8 + size]
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            idat += body
        at += 12 + size
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert depth == 8 and colour in (2, 6) and interlace == 0
    bpp = 3 if colour == 2 else 4
    raw, stride = zlib.decompress(idat), width * bpp
    prev, colours, pos = bytearray(stride), set(), 0
    for _ in range(height):
        kind, line = raw[pos], bytearray(raw[pos + 1 : pos + 1 + stride])
        pos += 1 + stride
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], prev[i - bpp] if i >= bpp else 0
            if kind == 1:
                line[i] = (line[i] + a) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + b) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (a + b) // 2) & 0xFF
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else b if pb <= pc else c
                line[i] = (line[i] + pred) & 0xFF
        colours.update((line[i], line[i + 1], line[i + 2]) for i in range(0, stride, bpp * 7))
        prev = line
    return colours


def test_a_screenshot_shows_the_matrix(pages: Path, tmp_path: Path) -> None:
    shot = tmp_path / "access.png"
    # half the pixels each way (the page as laid out at 1600x1200): a quarter of the decoding
    done = run_browser(
        pages / "access.html",
        tmp_path / "profile",
        "--force-device-scale-factor=0.5",
        f"--screenshot={shot}",
    )
    assert done.returncode == 0 and shot.exists(), done.stderr[-2000:]
    colours = png_pixels(shot.read_bytes())
    # the cell colours of the style sheet: clear, masked, hidden rows
    for rgb in ((0xDA, 0xFB, 0xE1), (0xFF, 0xF1, 0xC2), (0xFF, 0xEB, 0xE9)):
        assert rgb in colours, rgb
