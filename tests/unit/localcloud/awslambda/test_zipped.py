"""A function's code is uploaded as its asset zipped (`localcloud.awslambda.invocations.zipped`), the
archive kept while the directory's files stay as they are."""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path
from unittest import mock

from localcloud.awslambda.invocations import zipped


def contents(archive: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(archive)) as opened:
        return {name: opened.read(name) for name in opened.namelist()}


def test_an_asset_is_zipped_once_while_its_files_stay_as_they_are(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "handler.py").write_text("def handler(event, context): return 1\n")
    (tmp_path / "pkg" / "part.py").write_text("X = 1\n")
    with mock.patch("localcloud.awslambda.invocations.zipfile.ZipFile", wraps=zipfile.ZipFile) as archives:
        first, again = zipped(tmp_path), zipped(tmp_path)
    assert archives.call_count == 1
    assert first == again
    assert contents(first) == {
        "handler.py": b"def handler(event, context): return 1\n",
        "pkg/part.py": b"X = 1\n",
    }


def test_a_changed_added_or_removed_file_is_zipped_again(tmp_path: Path) -> None:
    handler = tmp_path / "handler.py"
    handler.write_text("A = 1\n")
    assert contents(zipped(tmp_path)) == {"handler.py": b"A = 1\n"}
    handler.write_text("A = 2\n")  # the same size: the modification time tells
    os.utime(handler, ns=(handler.stat().st_atime_ns, handler.stat().st_mtime_ns + 1_000_000))
    assert contents(zipped(tmp_path)) == {"handler.py": b"A = 2\n"}
    (tmp_path / "more.py").write_text("B = 1\n")
    assert contents(zipped(tmp_path)) == {"handler.py": b"A = 2\n", "more.py": b"B = 1\n"}
    handler.unlink()
    assert contents(zipped(tmp_path)) == {"more.py": b"B = 1\n"}
