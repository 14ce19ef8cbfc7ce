"""Tests of artstyle.data.download against a local HTTP server and hand-built zips (no internet)."""

from __future__ import annotations

import hashlib
import http.server
import os
import re
import stat
import struct
import threading
import zipfile
import zlib
from pathlib import Path

import pytest

from artstyle import http_download
from artstyle.data import download as dl
from artstyle.data.archive import UnsafeArchiveError, import_folder, safe_extract_zip
from artstyle.data.download import class_key, fetch_raw, select_classes
from artstyle.http_download import ChecksumError, DownloadError, download_file

# --------------------------------------------------------------------------- fixtures

#: Relative path (after unwrapping) -> content, for the Pandora-like archive.
PANDORA_FILES: dict[str, bytes] = {
    "Baroque/Rembrandt/Night Watch, 1642.jpg": b"jpeg:night-watch",
    "Baroque/Caravaggio/Judith's head.jpg": b"jpeg:judith",
    "realism/Gustave Courbet/Un enterrement à Ornans.jpg": b"jpeg:ornans",
    "Impressionism/Monet, Claude/Impression, soleil levant.jpg": b"jpeg:soleil",
    "Impressionism/Dégas - Danseuses.png": b"png:danseuses",
    "High_Renaissance/Dürer/Selbstbildnis im Pelzrock.jpg": b"jpeg:durer",
    "ukiyo-e/葛飾北斎/神奈川沖浪裏.jpg": b"jpeg:wave",
}
#: Entries that must not come out of the archive (junk and loose files).
PANDORA_JUNK: dict[str, bytes] = {
    "Pandora_V1/readme.txt": b"loose file beside the class folders",
    "Pandora_V1/.DS_Store": b"\x00\x00\x00\x01Bud1",
    "Pandora_V1/Baroque/.DS_Store": b"\x00\x00\x00\x01Bud1",
    "Pandora_V1/realism/Thumbs.db": b"thumbs",
    "Pandora_V1/Impressionism/desktop.ini": b"[.ShellClassInfo]",
    "__MACOSX/Pandora_V1/Baroque/Rembrandt/._Night Watch, 1642.jpg": b"\x00\x05\x16\x07",
    "__MACOSX/._Pandora_V1": b"\x00\x05\x16\x07",
}


def make_pandora_zip(path: Path, *, wrapper: str | None = "Pandora_V1") -> Path:
    """A small zip in Pandora's layout: wrapper folder, mixed casing, junk, odd names."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        if wrapper:
            zf.writestr(f"{wrapper}/", b"")
            zf.writestr(f"{wrapper}/Baroque/", b"")
        for rel, data in PANDORA_FILES.items():
            zf.writestr(f"{wrapper}/{rel}" if wrapper else rel, data)
        for rel, data in PANDORA_JUNK.items():
            if wrapper:
                zf.writestr(rel.replace("Pandora_V1", wrapper), data)
            elif not rel.startswith("Pandora_V1/readme"):
                zf.writestr(rel.replace("Pandora_V1/", ""), data)
    return path


def tree_of(root: Path) -> dict[str, bytes]:
    """All files under root, as relative POSIX path -> bytes."""
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class _Handler(http.server.BaseHTTPRequestHandler):
    """Serves ``server.files``; can truncate bodies, honour or ignore Range, fail with 503."""

    timeout = 5  # socket timeout: a stuck client cannot hang the server thread

    def log_message(self, *args) -> None:  # keep test output quiet
        pass

    def do_GET(self) -> None:
        srv = self.server
        self.close_connection = True
        with srv.lock:
            srv.log.append({"path": self.path, "range": self.headers.get("Range"),
                            "if_range": self.headers.get("If-Range")})
            count = len(srv.log)
            fail = srv.fail_left > 0
            srv.fail_left -= fail
        if count > srv.max_requests or fail:
            self.send_error(503, "busy")
            return
        entry = srv.files.get(self.path)
        if entry is None:
            self.send_error(404, "no such file")
            return
        body, etag = entry
        start, status = 0, 200
        rng = self.headers.get("Range")
        if_range = self.headers.get("If-Range")
        if rng and srv.support_range and (if_range is None or if_range == etag):
            start = int(re.fullmatch(r"bytes=(\d+)-", rng).group(1))
            if start >= len(body):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(body)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            status = 206
        payload = body[start:]
        self.send_response(status)
        self.send_header("Content-Type", "application/zip")
        self.send_header("Content-Length", str(len(payload)))
        if etag:
            self.send_header("ETag", etag)
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        self.end_headers()
        with srv.lock:
            cut = srv.always_truncate or srv.truncate_left > 0
            srv.truncate_left -= cut
        sent = payload[:len(payload) // 2] if cut else payload
        self.wfile.write(sent)
        with srv.lock:
            srv.bytes_sent += len(sent)


class LocalServer:
    """A threaded-off http.server on 127.0.0.1 with a random free port."""

    def __init__(self) -> None:
        self.httpd = http.server.HTTPServer(("127.0.0.1", 0), _Handler)
        h = self.httpd
        h.lock = threading.Lock()
        h.files, h.log = {}, []
        h.support_range, h.always_truncate = True, False
        h.truncate_left = h.fail_left = h.bytes_sent = 0
        h.max_requests = 25  # bounds any client retry loop
        self.thread = threading.Thread(target=h.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()

    def serve(self, path: str, body: bytes, etag: str | None = None) -> str:
        self.httpd.files[path] = (body, etag)
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def __getattr__(self, name):  # convenience: server.log, server.truncate_left, ...
        return getattr(self.httpd, name)

    def set(self, **kwargs) -> None:
        for k, v in kwargs.items():
            setattr(self.httpd, k, v)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def server():
    srv = LocalServer()
    try:
        yield srv
    finally:
        srv.close()


@pytest.fixture
def pandora_zip(tmp_path) -> bytes:
    return make_pandora_zip(tmp_path / "built.zip").read_bytes()


FAST = {"timeout": 5, "progress": False, "backoff": 0.0}


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


# --------------------------------------------------------------------------- download + extract


def test_fetch_pandora_from_http_gives_the_class_tree(server, pandora_zip, tmp_path):
    url = server.serve("/pandora/Download/Pandora_V1.zip", pandora_zip)
    out = tmp_path / "data" / "raw"
    summary = fetch_raw("pandora7k", out, url=url, **FAST)

    assert tree_of(out) == PANDORA_FILES
    assert summary["classes"] == ["Baroque", "High_Renaissance", "Impressionism", "realism",
                                  "ukiyo-e"]
    assert summary["counts"] == {"Baroque": 2, "High_Renaissance": 1, "Impressionism": 2,
                                 "realism": 1, "ukiyo-e": 1}
    assert summary["n_files"] == 7 and summary["n_classes"] == 5
    assert summary["sha256"] == sha(pandora_zip)
    assert summary["origin"] == url
    assert leftovers(out.parent) == ["raw"]  # no temp dirs, no archive left behind


def test_fetch_replaces_old_tree_and_caches_archive(server, pandora_zip, tmp_path):
    url = server.serve("/Pandora_V1.zip", pandora_zip)
    out, cache = tmp_path / "raw", tmp_path / "downloads"
    (out / "Stale").mkdir(parents=True)
    (out / "Stale" / "old.jpg").write_bytes(b"old")
    fetch_raw("pandora7k", out, url=url, cache_dir=cache, **FAST)
    assert tree_of(out) == PANDORA_FILES
    assert leftovers(cache) == ["Pandora_V1.zip"]
    assert len(server.log) == 1

    # A second run reuses the cached archive (pinned: it is re-hashed, not re-fetched).
    summary = fetch_raw("pandora7k", out, url=url, cache_dir=cache, sha256=sha(pandora_zip),
                        classes=["high renaissance", "BAROQUE"], **FAST)
    assert len(server.log) == 1
    assert summary["classes"] == ["Baroque", "High_Renaissance"]
    assert sorted(p.name for p in out.iterdir()) == ["Baroque", "High_Renaissance"]
    assert leftovers(tmp_path) == ["built.zip", "downloads", "raw"]


def test_truncated_transfer_is_resumed_with_range(server, pandora_zip, tmp_path):
    url = server.serve("/a.zip", pandora_zip, etag='"v1"')
    server.set(truncate_left=2)
    dest = download_file(url, tmp_path / "a.zip", retries=3, **FAST)

    assert dest.read_bytes() == pandora_zip
    n = len(pandora_zip)
    first, second = n // 2, n // 2 + (n - n // 2) // 2
    assert [r["range"] for r in server.log] == [None, f"bytes={first}-", f"bytes={second}-"]
    assert [r["if_range"] for r in server.log] == [None, '"v1"', '"v1"']
    assert server.bytes_sent == n  # nothing downloaded twice
    assert leftovers(tmp_path) == ["a.zip", "built.zip"]


def test_truncated_transfer_without_range_support_restarts(server, pandora_zip, tmp_path):
    url = server.serve("/a.zip", pandora_zip)
    server.set(support_range=False, truncate_left=1)
    dest = download_file(url, tmp_path / "a.zip", retries=2, **FAST)
    assert dest.read_bytes() == pandora_zip
    assert len(server.log) == 2


def test_always_truncating_server_fails_cleanly(server, pandora_zip, tmp_path):
    url = server.serve("/a.zip", pandora_zip)
    server.set(always_truncate=True)
    with pytest.raises(DownloadError, match=r"after 3 attempt\(s\)"):
        download_file(url, tmp_path / "dl" / "a.zip", retries=2, **FAST)
    assert len(server.log) == 3
    assert leftovers(tmp_path / "dl") == []  # no a.zip, no .part, no .part.json


def test_always_truncating_server_keep_partial(server, pandora_zip, tmp_path):
    url = server.serve("/a.zip", pandora_zip)
    server.set(always_truncate=True, support_range=False)
    with pytest.raises(DownloadError):
        download_file(url, tmp_path / "a.zip", retries=0, keep_partial=True, **FAST)
    part = tmp_path / "a.zip.part"
    assert part.read_bytes() == pandora_zip[:len(pandora_zip) // 2]
    assert not (tmp_path / "a.zip").exists()


def test_resume_from_existing_part_file(server, pandora_zip, tmp_path):
    url = server.serve("/a.zip", pandora_zip)
    k = len(pandora_zip) // 3
    (tmp_path / "a.zip.part").write_bytes(pandora_zip[:k])
    download_file(url, tmp_path / "a.zip", sha256=sha(pandora_zip), **FAST)
    assert (tmp_path / "a.zip").read_bytes() == pandora_zip
    assert [r["range"] for r in server.log] == [f"bytes={k}-"]
    assert server.bytes_sent == len(pandora_zip) - k
    assert not (tmp_path / "a.zip.part").exists()


def test_part_file_is_discarded_when_server_ignores_range(server, pandora_zip, tmp_path):
    url = server.serve("/a.zip", pandora_zip)
    server.set(support_range=False)
    (tmp_path / "a.zip.part").write_bytes(b"garbage from some other download")
    download_file(url, tmp_path / "a.zip", **FAST)
    assert (tmp_path / "a.zip").read_bytes() == pandora_zip


def test_complete_part_file_and_oversized_part_file(server, pandora_zip, tmp_path):
    url = server.serve("/a.zip", pandora_zip)
    (tmp_path / "a.zip.part").write_bytes(pandora_zip)  # complete, never renamed
    download_file(url, tmp_path / "a.zip", sha256=sha(pandora_zip), **FAST)
    assert (tmp_path / "a.zip").read_bytes() == pandora_zip
    assert server.bytes_sent == 0  # answered by 416 "bytes */n"

    (tmp_path / "b.zip.part").write_bytes(pandora_zip + b"extra bytes")
    url_b = server.serve("/b.zip", pandora_zip)
    download_file(url_b, tmp_path / "b.zip", **FAST)
    assert (tmp_path / "b.zip").read_bytes() == pandora_zip


def test_changed_file_on_server_restarts_via_if_range(server, pandora_zip, tmp_path):
    old = b"A" * 4000
    url = server.serve("/a.zip", old, etag='"old"')
    server.set(truncate_left=1)
    with pytest.raises(DownloadError):
        download_file(url, tmp_path / "a.zip", retries=0, keep_partial=True, **FAST)
    assert (tmp_path / "a.zip.part").stat().st_size == 2000
    server.serve("/a.zip", pandora_zip, etag='"new"')
    download_file(url, tmp_path / "a.zip", **FAST)
    assert server.log[-1]["if_range"] == '"old"'
    assert (tmp_path / "a.zip").read_bytes() == pandora_zip  # not old[:2000] + new[2000:]


def test_http_errors(server, pandora_zip, tmp_path):
    url = server.serve("/a.zip", pandora_zip)
    with pytest.raises(DownloadError, match="HTTP 404"):
        download_file(url.replace("a.zip", "missing.zip"), tmp_path / "m.zip", **FAST)
    assert len(server.log) == 1  # 404 is not retried

    server.set(fail_left=2)  # two 503 replies, then the file
    download_file(url, tmp_path / "a.zip", retries=2, **FAST)
    assert (tmp_path / "a.zip").read_bytes() == pandora_zip
    assert len(server.log) == 4

    with pytest.raises(ValueError, match="http"):
        download_file("ftp://example.org/a.zip", tmp_path / "x.zip", **FAST)
    with pytest.raises(ValueError, match="64 hex"):
        download_file(url, tmp_path / "x.zip", sha256="abc", **FAST)


def test_sha256_mismatch_leaves_nothing(server, pandora_zip, tmp_path):
    url = server.serve("/Pandora_V1.zip", pandora_zip)
    wrong = "0" * 64
    with pytest.raises(ChecksumError) as info:
        download_file(url, tmp_path / "dl" / "a.zip", sha256=wrong, **FAST)
    assert wrong in str(info.value) and sha(pandora_zip) in str(info.value)
    assert info.value.expected == wrong and info.value.actual == sha(pandora_zip)
    assert leftovers(tmp_path / "dl") == []

    out, cache = tmp_path / "data" / "raw", tmp_path / "data" / "downloads"
    with pytest.raises(ChecksumError, match=sha(pandora_zip)):
        fetch_raw("pandora18k", out, url=url, sha256=wrong, cache_dir=cache, **FAST)
    assert not out.exists()
    assert leftovers(cache) == []
    assert leftovers(out.parent) == ["downloads"]  # no temp folder left either


def test_correct_sha256_pin_passes(server, pandora_zip, tmp_path):
    url = server.serve("/a.zip", pandora_zip)
    pin = "SHA256:" + sha(pandora_zip).upper()
    dest = download_file(url, tmp_path / "a.zip", sha256=pin, **FAST)
    assert dest.read_bytes() == pandora_zip
    # Already there with the pinned hash: no second request.
    download_file(url, tmp_path / "a.zip", sha256=pin, **FAST)
    assert len(server.log) == 1


def test_non_zip_reply_is_rejected(server, tmp_path):
    url = server.serve("/Pandora_V1.zip", b"<html>Service temporarily unavailable</html>")
    with pytest.raises(DownloadError, match="did not return a zip"):
        fetch_raw("pandora7k", tmp_path / "raw", url=url, cache_dir=tmp_path / "c", **FAST)
    assert leftovers(tmp_path / "c") == []
    assert not (tmp_path / "raw").exists()


# --------------------------------------------------------------------------- safe extraction


def _zip_with(path: Path, entries: list[tuple[zipfile.ZipInfo | str, bytes]]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in entries:
            zf.writestr(name, data)
    return path


def _symlink_info(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info


@pytest.mark.parametrize("bad", ["../evil.txt", "Baroque/../../evil.txt", "ABS", "C:/evil.txt",
                                 "Baroque\\..\\..\\evil.txt", "SYMLINK"])
def test_unsafe_entries_refuse_the_whole_archive(tmp_path, bad):
    root = tmp_path / "x"
    root.mkdir()
    if bad == "ABS":
        name: zipfile.ZipInfo | str = str(root / "abs-evil.txt")  # an absolute path
    elif bad == "SYMLINK":
        name = _symlink_info("Baroque/link.jpg")
    else:
        name = bad
    archive = _zip_with(tmp_path / "evil.zip", [("Baroque/a.jpg", b"a"), ("realism/b.jpg", b"b"),
                                                 (name, b"/etc/passwd")])
    out = root / "raw"
    with pytest.raises(UnsafeArchiveError, match="refusing"):
        safe_extract_zip(archive, out)
    assert leftovers(root) == []  # no out dir, no temp dir, no abs-evil.txt
    assert not any(p.name.endswith("evil.txt") for p in tmp_path.rglob("*"))


def test_absolute_and_dotdot_entries_are_listed(tmp_path):
    archive = _zip_with(tmp_path / "evil.zip", [("../evil.txt", b"x"), ("/etc/evil.txt", b"y"),
                                                 ("Baroque/a.jpg", b"a")])
    with pytest.raises(UnsafeArchiveError) as info:
        safe_extract_zip(archive, tmp_path / "raw")
    msg = str(info.value)
    assert "'../evil.txt' ('..' component)" in msg
    assert "'/etc/evil.txt' (absolute path)" in msg
    assert not (tmp_path / "raw").exists() and not (tmp_path.parent / "evil.txt").exists()


def _forge_raw_names(path: Path, files: dict[bytes, bytes]) -> Path:
    """A zip whose entry names are the given raw bytes, stored WITHOUT the UTF-8 flag."""
    placeholders = {}
    with zipfile.ZipFile(path, "w") as zf:
        for i, (raw, data) in enumerate(files.items()):
            ph = f"Z{i}Q".ljust(len(raw), "Q").encode("ascii")
            placeholders[ph] = raw
            zf.writestr(ph.decode(), data)
    blob = path.read_bytes()
    for ph, raw in placeholders.items():
        assert blob.count(ph) == 2  # local header + central directory
        blob = blob.replace(ph, raw)
    path.write_bytes(blob)
    return path


def test_legacy_name_encodings(tmp_path):
    cp437_name = "Baroque/Dürer/Gérôme, l'été.jpg"
    utf8_name = "realism/Шишкин/Утро в сосновом лесу.jpg"
    archive = _forge_raw_names(tmp_path / "legacy.zip", {
        cp437_name.encode("cp437"): b"cp437",
        utf8_name.encode("utf-8"): b"utf8",
    })
    with zipfile.ZipFile(archive) as zf:
        assert all(not i.flag_bits & 0x800 for i in zf.infolist())
    out = safe_extract_zip(archive, tmp_path / "raw")
    assert tree_of(out) == {cp437_name: b"cp437", utf8_name: b"utf8"}

    # An explicit codec for the non-flagged names (e.g. Central-European Windows).
    cp852_name = "Baroque/Čapek/Zátiší.jpg"
    archive = _forge_raw_names(tmp_path / "cp852.zip", {cp852_name.encode("cp852"): b"x",
                                                        b"realism\\a.jpg": b"y"})  # DOS separator
    out = safe_extract_zip(archive, tmp_path / "raw852", name_encoding="cp852")
    assert set(tree_of(out)) == {cp852_name, "realism/a.jpg"}


def test_info_zip_unicode_path_extra_field(tmp_path):
    raw = b"Baroque/Durer.jpg"
    real = "Baroque/Dürer.jpg"
    info = zipfile.ZipInfo(raw.decode())
    payload = b"\x01" + struct.pack("<I", zlib.crc32(raw)) + real.encode("utf-8")
    info.extra = struct.pack("<HH", 0x7075, len(payload)) + payload
    archive = _zip_with(tmp_path / "u.zip", [(info, b"d"), ("realism/x.jpg", b"x")])
    out = safe_extract_zip(archive, tmp_path / "raw")
    assert set(tree_of(out)) == {real, "realism/x.jpg"}


def test_unwrapping_rules(tmp_path):
    # Two wrapping levels are both removed.
    a = _zip_with(tmp_path / "a.zip", [("Outer/Pandora/Baroque/x.jpg", b"1"),
                                       ("Outer/Pandora/realism/Courbet/y.jpg", b"2")])
    assert set(tree_of(safe_extract_zip(a, tmp_path / "a"))) == {"Baroque/x.jpg",
                                                                 "realism/Courbet/y.jpg"}
    # A single class folder holding images is a class, not a wrapper.
    b = _zip_with(tmp_path / "b.zip", [("Cubism/x.jpg", b"1"), ("Cubism/Picasso/y.jpg", b"2")])
    assert set(tree_of(safe_extract_zip(b, tmp_path / "b"))) == {"Cubism/x.jpg",
                                                                 "Cubism/Picasso/y.jpg"}
    # No wrapper: class folders at the top stay, loose top-level files are dropped.
    c = _zip_with(tmp_path / "c.zip", [("Cubism/x.jpg", b"1"), ("Fauvism/y.jpg", b"2"),
                                       ("LICENSE.txt", b"l")])
    assert set(tree_of(safe_extract_zip(c, tmp_path / "c"))) == {"Cubism/x.jpg", "Fauvism/y.jpg"}
    # Nothing inside a folder at all.
    d = _zip_with(tmp_path / "d.zip", [("x.jpg", b"1"), ("__MACOSX/Cubism/._y.jpg", b"2")])
    with pytest.raises(ValueError, match="no file inside a class folder"):
        safe_extract_zip(d, tmp_path / "d")
    assert not (tmp_path / "d").exists()


def test_extract_pandora_zip_without_wrapper_and_bad_zip(tmp_path):
    archive = make_pandora_zip(tmp_path / "flat.zip", wrapper=None)
    assert tree_of(safe_extract_zip(archive, tmp_path / "raw")) == PANDORA_FILES
    (tmp_path / "bad.zip").write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(zipfile.BadZipFile, match="not a valid zip"):
        safe_extract_zip(tmp_path / "bad.zip", tmp_path / "raw2")
    with pytest.raises(FileNotFoundError):
        safe_extract_zip(tmp_path / "missing.zip", tmp_path / "raw3")


def test_crc_error_leaves_no_output(tmp_path):
    archive = _zip_with(tmp_path / "a.zip", [("Baroque/a.jpg", b"A" * 100),
                                             ("realism/b.jpg", b"B" * 100)])
    blob = bytearray(archive.read_bytes())
    blob[blob.index(b"B" * 100) + 10] = ord("C")  # stored member, corrupt one data byte
    archive.write_bytes(bytes(blob))
    with pytest.raises(zipfile.BadZipFile, match="CRC"):
        safe_extract_zip(archive, tmp_path / "out" / "raw")
    assert leftovers(tmp_path / "out") == []


# --------------------------------------------------------------------------- classes


@pytest.fixture
def class_tree(tmp_path) -> Path:
    root = tmp_path / "classes"
    for name in ["High renaissance", "Baroque", "realism", "01_Byzantin_Iconography",
                 "Naïve Art", ".hidden"]:
        (root / name).mkdir(parents=True)
    (root / "notes.txt").write_text("not a class")
    return root


def test_class_key():
    assert class_key("High renaissance") == class_key("high-renaissance") \
        == class_key("High_Renaissance") == "highrenaissance"
    assert class_key("01_Byzantin_Iconography") == "byzantiniconography"
    assert class_key("Naïve Art") == class_key("naive-art")
    assert class_key("Pop Art") != class_key("Op Art")


def test_select_classes_matching(class_tree):
    assert select_classes(class_tree) == ["01_Byzantin_Iconography", "Baroque",
                                          "High renaissance", "Naïve Art", "realism"]
    assert select_classes(class_tree, ["high-renaissance", "REALISM", "High_Renaissance",
                                       "byzantin iconography", "naive art"]) == [
        "High renaissance", "realism", "01_Byzantin_Iconography", "Naïve Art"]


def test_select_classes_errors(class_tree, tmp_path):
    with pytest.raises(ValueError) as info:
        select_classes(class_tree, ["Baroque", "Cubism", "barokue"])
    msg = str(info.value)
    assert "'Cubism'" in msg and "'barokue'" in msg
    assert "available: '01_Byzantin_Iconography', 'Baroque', 'High renaissance'" in msg
    assert "did you mean 'Baroque'" in msg
    (class_tree / "baroque").mkdir()
    with pytest.raises(ValueError, match="ambiguous"):
        select_classes(class_tree, ["Baroque"])
    with pytest.raises(FileNotFoundError):
        select_classes(tmp_path / "nope", ["x"])


# --------------------------------------------------------------------------- import_folder


def _make_folder(root: Path) -> Path:
    for rel, data in PANDORA_FILES.items():
        p = root / "Pandora_V1" / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    for rel, data in PANDORA_JUNK.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    return root


def test_import_folder_links_or_copies(tmp_path):
    src = _make_folder(tmp_path / "src")
    out = import_folder(src, tmp_path / "raw")
    assert tree_of(out) == PANDORA_FILES
    rel = "Baroque/Rembrandt/Night Watch, 1642.jpg"
    assert (out / rel).stat().st_ino == (src / "Pandora_V1" / rel).stat().st_ino  # hard link

    copied = import_folder(src, tmp_path / "raw_copy", link=False)
    assert tree_of(copied) == PANDORA_FILES
    assert (copied / rel).stat().st_ino != (src / "Pandora_V1" / rel).stat().st_ino
    assert leftovers(tmp_path) == ["raw", "raw_copy", "src"]


def test_import_folder_follows_linked_class_folder(tmp_path):
    elsewhere = tmp_path / "elsewhere" / "Cubism"
    elsewhere.mkdir(parents=True)
    (elsewhere / "a.jpg").write_bytes(b"a")
    src = tmp_path / "src"
    (src / "Fauvism").mkdir(parents=True)
    (src / "Fauvism" / "b.jpg").write_bytes(b"b")
    os.symlink(elsewhere, src / "Cubism")
    os.symlink(src, src / "Fauvism" / "loop")  # must not recurse forever
    out = import_folder(src, tmp_path / "raw")
    assert tree_of(out) == {"Cubism/a.jpg": b"a", "Fauvism/b.jpg": b"b"}


def test_import_folder_from_zip_and_errors(tmp_path):
    archive = make_pandora_zip(tmp_path / "Pandora_V1.zip")
    assert tree_of(import_folder(archive, tmp_path / "raw")) == PANDORA_FILES

    with pytest.raises(FileNotFoundError, match="does not exist"):
        import_folder(tmp_path / "no-such-folder", tmp_path / "raw2")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ValueError, match="not a zip"):
        import_folder(tmp_path / "notes.txt", tmp_path / "raw2")
    with pytest.raises(ValueError, match="overlap"):
        import_folder(tmp_path / "raw", tmp_path / "raw" / "again")
    assert not (tmp_path / "raw2").exists()


def test_fetch_raw_folder_source_and_errors(tmp_path):
    src = _make_folder(tmp_path / "src")
    out = tmp_path / "data" / "raw"
    summary = fetch_raw("folder", out, path=src, classes=["ukiyo e", "impressionism"],
                        progress=False)
    assert summary["classes"] == ["Impressionism", "ukiyo-e"]
    assert summary["counts"] == {"Impressionism": 2, "ukiyo-e": 1}
    assert summary["sha256"] is None
    assert tree_of(out) == {k: v for k, v in PANDORA_FILES.items()
                            if k.startswith(("Impressionism/", "ukiyo-e/"))}

    # Unknown class: clear error, the previous tree is left as it was.
    with pytest.raises(ValueError, match="unknown class.*available: 'Baroque'"):
        fetch_raw("folder", out, path=src, classes=["Cubism"], progress=False)
    assert set(tree_of(out)) == {"Impressionism/Dégas - Danseuses.png",
                                 "Impressionism/Monet, Claude/Impression, soleil levant.jpg",
                                 "ukiyo-e/葛飾北斎/神奈川沖浪裏.jpg"}
    assert leftovers(out.parent) == ["raw"]

    # A zip given as folder source, pinned.
    archive = make_pandora_zip(tmp_path / "p.zip")
    digest = sha(archive.read_bytes())
    assert fetch_raw("folder", out, path=archive, sha256=digest, progress=False)["sha256"] == digest
    assert tree_of(out) == PANDORA_FILES
    with pytest.raises(ChecksumError):
        fetch_raw("folder", out, path=archive, sha256="1" * 64, progress=False)

    # A local copy of a Pandora archive.
    summary = fetch_raw("pandora7k", tmp_path / "raw7k", path=archive, progress=False)
    assert summary["n_files"] == len(PANDORA_FILES)

    with pytest.raises(FileNotFoundError):
        fetch_raw("folder", out, path=tmp_path / "missing", progress=False)
    with pytest.raises(ValueError, match="needs path"):
        fetch_raw("folder", out, progress=False)
    with pytest.raises(ValueError, match="sample"):
        fetch_raw("sample", out)
    with pytest.raises(ValueError, match="known: sample, pandora7k, pandora18k, folder"):
        fetch_raw("wikiart", out)
    with pytest.raises(ValueError, match="overlap"):
        fetch_raw("folder", tmp_path / "src" / "raw", path=src, progress=False)
    assert tree_of(out) == PANDORA_FILES


def test_known_sources_table():
    assert set(dl.SOURCES) == {"sample", "pandora7k", "pandora18k", "folder"}
    assert dl.SOURCES["pandora7k"].url == "http://imag.pub.ro/pandora/Download/Pandora_V1.zip"
    assert dl.SOURCES["pandora18k"].url == "http://imag.pub.ro/pandora/Download/Pandora_18k.zip"
    assert all(s.description for s in dl.SOURCES.values())


# --------------------------------------------------------------------------- real paintings


@pytest.mark.shared
def test_real_dataset_through_http_and_folder(shared_dir, server, tmp_path):
    """painting91-mini (520 paintings, 13 movements) zipped, served with a truncated first
    transfer, fetched, and imported as a folder: both give the same tree as the source."""
    src = shared_dir / "datasets" / "painting91-mini"
    expected = {p.relative_to(src).as_posix(): p.stat().st_size
                for p in src.rglob("*") if p.is_file() and not p.name.startswith(".")}
    archive = tmp_path / "p91.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as zf:
        for rel in sorted(expected):
            zf.write(src / rel, f"painting91-mini/{rel}")
    url = server.serve("/p91.zip", archive.read_bytes())
    server.set(truncate_left=1)

    summary = fetch_raw("pandora7k", tmp_path / "raw_http", url=url, **FAST)
    assert summary["n_classes"] == 13 and summary["n_files"] == len(expected) == 520
    assert [r["range"] is not None for r in server.log] == [False, True]
    got = {p.relative_to(tmp_path / "raw_http").as_posix(): p.stat().st_size
           for p in (tmp_path / "raw_http").rglob("*") if p.is_file()}
    assert got == expected

    summary = fetch_raw("folder", tmp_path / "raw_dir", path=src,
                        classes=["high-renaissance", "POP_ART"], progress=False)
    assert summary["classes"] == ["High renaissance", "Pop Art"]
    assert summary["counts"] == {c: sum(1 for k in expected if k.startswith(c + "/"))
                                 for c in ("High renaissance", "Pop Art")}
    rel = next(k for k in expected if k.startswith("Pop Art/"))
    assert (tmp_path / "raw_dir" / rel).read_bytes() == (src / rel).read_bytes()


def test_interrupted_download_keeps_part_and_resumes(server, pandora_zip, tmp_path, monkeypatch):
    url = server.serve("/a.zip", pandora_zip, etag='"v1"')
    server.set(truncate_left=1)

    def interrupt(seconds):  # Ctrl-C during the wait before the first retry
        raise KeyboardInterrupt

    monkeypatch.setattr(http_download.time, "sleep", interrupt)
    with pytest.raises(KeyboardInterrupt):
        download_file(url, tmp_path / "a.zip", **FAST)
    half = len(pandora_zip) // 2
    assert (tmp_path / "a.zip.part").stat().st_size == half
    assert not (tmp_path / "a.zip").exists()

    monkeypatch.undo()
    download_file(url, tmp_path / "a.zip", sha256=sha(pandora_zip), **FAST)
    assert (tmp_path / "a.zip").read_bytes() == pandora_zip
    assert server.log[-1]["range"] == f"bytes={half}-" and server.log[-1]["if_range"] == '"v1"'
    assert leftovers(tmp_path) == ["a.zip", "built.zip"]


# --------------------------------------------------------------------------- data bug reports

REPO = Path(__file__).resolve().parents[1]


def _png_bytes(seed: int) -> bytes:
    import io

    import numpy as np
    from PIL import Image

    buf = io.BytesIO()
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def test_folder_and_zip_give_the_same_nfc_class_and_artist_names(tmp_path):
    import unicodedata

    from artstyle.data.catalogue import prepare_dataset
    from artstyle.io import read_json

    nfd = {name: unicodedata.normalize("NFD", name)
           for name in ("Réalisme", "Jean-François Millet", "Glaneuses é.png")}
    files = {}
    for i in range(3):
        files[f"{nfd['Réalisme']}/{nfd['Jean-François Millet']}/{i}.png"] = _png_bytes(i)
        files[f"Baroque/{i}.png"] = _png_bytes(10 + i)
    files[f"{nfd['Réalisme']}/{nfd['Glaneuses é.png']}"] = _png_bytes(20)
    src = tmp_path / "src"
    for rel, data in files.items():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_bytes(data)
    assert nfd["Réalisme"] in os.listdir(src)          # the folder really is NFD on disk
    archive = _zip_with(tmp_path / "src.zip", list(files.items()))

    by_folder = fetch_raw("folder", tmp_path / "a" / "raw", path=src, progress=False)
    by_zip = fetch_raw("folder", tmp_path / "b" / "raw", path=archive, progress=False)
    assert by_folder["classes"] == by_zip["classes"] == ["Baroque", "R\u00e9alisme"]
    assert by_folder["counts"] == by_zip["counts"] == {"Baroque": 3, "R\u00e9alisme": 4}
    tree_a, tree_b = tree_of(tmp_path / "a" / "raw"), tree_of(tmp_path / "b" / "raw")
    assert tree_a == tree_b
    assert "R\u00e9alisme/Jean-Fran\u00e7ois Millet/0.png" in tree_a
    assert "R\u00e9alisme/Glaneuses \u00e9.png" in tree_a

    for d in ("a", "b"):
        prepare_dataset(tmp_path / d / "raw", tmp_path / d / "prepared", tmp_path / d / "report",
                        image_size=32, seed=0, progress=False)
    assert read_json(tmp_path / "a" / "prepared" / "classes.json") == \
        read_json(tmp_path / "b" / "prepared" / "classes.json") == ["Baroque", "R\u00e9alisme"]
    manifests = [(tmp_path / d / "prepared" / "manifest.csv").read_text(encoding="utf-8")
                 for d in ("a", "b")]
    assert manifests[0] == manifests[1]
    assert "Jean-Fran\u00e7ois Millet" in manifests[0]


def test_import_folder_names_differing_only_in_normalisation_keep_the_last(tmp_path):
    import unicodedata

    src = tmp_path / "src"
    for name, data in ((unicodedata.normalize("NFC", "Café"), b"nfc"),
                       (unicodedata.normalize("NFD", "Café"), b"nfd")):
        (src / name).mkdir(parents=True)
        (src / name / "a.jpg").write_bytes(data)
    (src / "Baroque").mkdir()
    (src / "Baroque" / "b.jpg").write_bytes(b"b")
    out = import_folder(src, tmp_path / "raw")
    tree = tree_of(out)
    assert set(tree) == {"Baroque/b.jpg", "Caf\u00e9/a.jpg"}
    assert tree["Caf\u00e9/a.jpg"] in (b"nfc", b"nfd")


def test_unknown_class_names_the_entry_and_available_classes_not_a_temp_folder(tmp_path):
    src = _make_folder(tmp_path / "src")
    archive = make_pandora_zip(tmp_path / "p.zip")
    for path in (src, archive):
        with pytest.raises(dl.DataSourceError) as info:
            fetch_raw("folder", tmp_path / "raw", path=path, classes=["Baroque", "Cubism"],
                      progress=False)
        assert str(info.value) == (
            f"unknown class(es) 'Cubism' in data.classes (not a class folder of {path}); "
            "available: 'Baroque', 'High_Renaissance', 'Impressionism', 'realism', 'ukiyo-e'"
            "; fix data.classes, or [] for all")
        assert ".fetch" not in str(info.value)
    assert leftovers(tmp_path) == ["p.zip", "src"]


def test_every_user_error_of_download_and_archive_is_an_artstyle_error(tmp_path):
    from artstyle.errors import ArtstyleError

    good = make_pandora_zip(tmp_path / "good.zip")
    (tmp_path / "notes.txt").write_text("not a zip")
    crc = _zip_with(tmp_path / "crc.zip", [("Baroque/a.jpg", b"A" * 100),
                                          ("realism/b.jpg", b"B" * 100)])
    blob = bytearray(crc.read_bytes())
    blob[blob.index(b"B" * 100) + 10] = ord("C")
    crc.write_bytes(bytes(blob))
    loose = _zip_with(tmp_path / "loose.zip", [("readme.txt", b"x")])
    evil = _zip_with(tmp_path / "evil.zip", [("../evil.txt", b"x"), ("Baroque/a.jpg", b"a")])
    link = _zip_with(tmp_path / "link.zip", [(_symlink_info("Baroque/l.jpg"), b"/etc/passwd"),
                                            ("Baroque/a.jpg", b"a")])
    out = tmp_path / "out" / "raw"
    folder = _make_folder(tmp_path / "src")
    cases = {   # what: (call, a part of the one-line message)
        "missing folder": (lambda: fetch_raw("folder", out, path=tmp_path / "nope"),
                           "does not exist"),
        "missing archive": (lambda: fetch_raw("pandora7k", out, path=tmp_path / "nope.zip"),
                            "does not exist; check data.path"),
        "not a zip": (lambda: fetch_raw("folder", out, path=tmp_path / "notes.txt"),
                      "is a file but not a zip archive"),
        "bad zip": (lambda: safe_extract_zip(tmp_path / "notes.txt", out),
                    "is not a valid zip archive"),
        "crc": (lambda: fetch_raw("folder", out, path=crc), "Bad CRC-32"),
        "no class folder": (lambda: fetch_raw("folder", out, path=loose),
                            "holds no file inside a class folder"),
        "dotdot": (lambda: fetch_raw("folder", out, path=evil), "'..' component"),
        "symlink": (lambda: fetch_raw("folder", out, path=link), "(symbolic link)"),
        "overlap": (lambda: fetch_raw("folder", folder / "raw", path=folder), "overlap"),
        "unknown class": (lambda: fetch_raw("folder", out, path=good, classes=["Cubism"]),
                          "unknown class(es) 'Cubism'"),
        "ambiguous class": (lambda: select_classes(_ambiguous(tmp_path), ["baroque"]),
                            "is ambiguous"),
        "no raw folder": (lambda: select_classes(tmp_path / "nope", ["x"]), "does not exist"),
        "unknown source": (lambda: fetch_raw("wikiart", out), "unknown data source"),
        "sample": (lambda: fetch_raw("sample", out), "generate_sample"),
        "folder without path": (lambda: fetch_raw("folder", out), "set data.path"),
        "folder with url": (lambda: fetch_raw("folder", out, path=good, url="http://x/y.zip"),
                            "takes path=, not url="),
        "folder pinned": (lambda: fetch_raw("folder", out, path=folder, sha256="0" * 64),
                          "can only pin a zip archive"),
        "url and path": (lambda: fetch_raw("pandora7k", out, path=good, url="http://x/y.zip"),
                         "not both"),
        "bad pin": (lambda: fetch_raw("folder", out, path=good, sha256="xyz"), "64 hex digits"),
    }
    for what, (call, part) in cases.items():
        with pytest.raises(ArtstyleError) as info:
            call()
        assert part in str(info.value), what
        assert "\n" not in str(info.value), what
    assert leftovers(tmp_path / "out") == []


def _ambiguous(tmp_path: Path) -> Path:
    root = tmp_path / "ambiguous"
    for name in ("Baroque", "baroque"):
        (root / name).mkdir(parents=True, exist_ok=True)
    return root


def test_old_exception_types_are_kept(tmp_path):
    from artstyle.data import archive

    assert issubclass(archive.ArchiveError, ValueError)
    assert issubclass(archive.UnsafeArchiveError, archive.ArchiveError)
    assert issubclass(archive.ArchiveNotFoundError, FileNotFoundError)
    assert issubclass(archive.BadArchiveError, zipfile.BadZipFile)
    assert issubclass(archive.NotEnoughSpaceError, OSError)
    assert issubclass(dl.DataSourceError, ValueError)
    assert issubclass(dl.DataPathError, FileNotFoundError)


# ------------------------------------------------------------- data.path and the stage script


def test_repository_root_and_data_path_inside_dvc_experiment_copies(tmp_path):
    root = tmp_path / "project" / "repo"
    shared = tmp_path / "project" / "shared" / "datasets" / "mini"
    shared.mkdir(parents=True)
    temp_copy = root / ".dvc" / "tmp" / "exps" / "tmpq1w2e3r4"
    queued = root / ".dvc" / "tmp" / "exps" / "run" / "abc123"
    for d in (temp_copy, queued):
        d.mkdir(parents=True)

    assert dl.repository_root(root) == root
    assert dl.repository_root(temp_copy) == root
    assert dl.repository_root(queued) == root
    for cwd in (root, temp_copy, queued):
        assert dl.resolve_data_path("../shared/datasets/mini", cwd=cwd) == shared
    assert dl.resolve_data_path(str(shared), cwd=temp_copy) == shared     # absolute: kept
    (root / "local.zip").write_bytes(b"zip")
    assert dl.resolve_data_path("local.zip", cwd=temp_copy) == root / "local.zip"

    with pytest.raises(dl.DataPathError) as info:
        dl.resolve_data_path("../shared/datasets/missing", cwd=temp_copy)
    assert str(info.value) == (
        "data.path '../shared/datasets/missing' does not exist: looked for "
        f"{tmp_path / 'project' / 'shared' / 'datasets' / 'missing'} (relative to the "
        f"repository root {root}); give an absolute path, e.g. "
        "-S data.path=/full/path/to/missing")


def _stage_dir(where: Path, *, path: str, classes: list[str] = ()) -> Path:
    import yaml

    params = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))
    params["data"].update(source="folder", path=path, classes=list(classes), url=None,
                          sha256=None)
    where.mkdir(parents=True, exist_ok=True)
    (where / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
    return where


def _run_download_stage(cwd: Path):
    import subprocess
    import sys

    env = {**os.environ, "ARTSTYLE_LOG": "CRITICAL"}
    return subprocess.run([sys.executable, str(REPO / "stages" / "download.py")], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.parametrize("case", ["dotdot", "symlink", "unknown_class", "missing_path"])
def test_download_stage_prints_one_line_without_traceback(tmp_path, case):
    if case == "dotdot":
        bad = _zip_with(tmp_path / "evil.zip", [("../evil.txt", b"x"), ("Baroque/a.jpg", b"a"),
                                               ("realism/b.jpg", b"b")])
        expected = (f"download: refusing to extract {bad}: 1 unsafe entry would be written "
                    "outside the target: '../evil.txt' ('..' component); nothing was extracted: "
                    "use an archive with relative paths and no links")
        cwd = _stage_dir(tmp_path / "repo", path=str(bad))
    elif case == "symlink":
        bad = _zip_with(tmp_path / "link.zip", [(_symlink_info("Baroque/l.jpg"), b"/etc/passwd"),
                                               ("realism/b.jpg", b"b")])
        expected = (f"download: refusing to extract {bad}: 1 unsafe entry would be written "
                    "outside the target: 'Baroque/l.jpg' (symbolic link); nothing was "
                    "extracted: use an archive with relative paths and no links")
        cwd = _stage_dir(tmp_path / "repo", path=str(bad))
    elif case == "unknown_class":
        good = make_pandora_zip(tmp_path / "good.zip")
        expected = (f"download: unknown class(es) 'Cubism' in data.classes (not a class folder "
                    f"of {good}); available: 'Baroque', 'High_Renaissance', 'Impressionism', "
                    "'realism', 'ukiyo-e'; fix data.classes, or [] for all")
        cwd = _stage_dir(tmp_path / "repo", path="../good.zip", classes=["Baroque", "Cubism"])
    else:
        expected = (f"download: data.path '../shared/none' does not exist: looked for "
                    f"{tmp_path / 'shared' / 'none'} (relative to the repository root "
                    f"{tmp_path / 'repo'}); give an absolute path, e.g. "
                    "-S data.path=/full/path/to/none")
        cwd = _stage_dir(tmp_path / "repo" / ".dvc" / "tmp" / "exps" / "tmpabc",
                         path="../shared/none")
    proc = _run_download_stage(cwd)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    # logs are off (ARTSTYLE_LOG=CRITICAL); progress bars (tqdm, on stderr) aside, the
    # stage says one line
    bar = re.compile(r"\|.*\[\d\d:\d\d")
    assert [line for line in proc.stderr.splitlines()
            if line.strip() and not bar.search(line)] == [expected]
    assert not (cwd / "data" / "raw").exists()
    assert not (tmp_path / "evil.txt").exists()


def test_download_stage_in_an_experiment_copy_reads_data_path_from_the_root(tmp_path):
    src = _make_folder(tmp_path / "shared" / "mini")
    cwd = _stage_dir(tmp_path / "repo" / ".dvc" / "tmp" / "exps" / "tmpxyz",
                     path="../shared/mini")
    proc = _run_download_stage(cwd)
    assert proc.returncode == 0, proc.stderr
    assert f"'data_path': '../shared/mini', 'data_path_resolved': '{src}'" in proc.stdout
    assert f"'origin': '{src}'" in proc.stdout
    assert tree_of(cwd / "data" / "raw") == PANDORA_FILES


@pytest.mark.parametrize(("classes", "url", "message"), [
    ([1, 10], None, ("data.classes entries must be text, spelt as the class folders; quote "
                     "1, 10, e.g. data.classes: ['1', '10']")),
    (["Baroque"], None, ("data.classes names a single class ('Baroque'); a classifier needs "
                         "at least 2: list more, or [] for all")),
    (["Baroque", "baroque"], None, "data.classes names a single class ('Baroque')"),
    ([], "ftp://example.org/p.zip", ("data.url must be an http:// or https:// URL, got "
                                     "'ftp://example.org/p.zip'")),
])
def test_data_params_refuse_what_download_cannot_use(classes, url, message):
    import yaml

    from artstyle.config import ParamsError, parse_params

    raw = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))
    raw["data"].update(classes=classes, url=url)
    with pytest.raises(ParamsError, match=re.escape(message)):
        parse_params(raw)
    raw["data"].update(classes=["1", "10"], url=None)
    assert parse_params(raw).data.classes == ["1", "10"]
