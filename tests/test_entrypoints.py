"""zoo.registry.entrypoints: the plugins' entry points, found as importlib.metadata finds them, without its import cost."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
import zipfile

from conftest import write_distribution
from zoo.registry.entrypoints import entry_points


def _key(ep) -> tuple[str, str, str | None, str | None]:
    return ep.name, ep.value, ep.dist.name if ep.dist else None, ep.dist.version if ep.dist else None


def test_same_entry_points_as_importlib_metadata():
    ours = sorted(map(_key, entry_points("zoo")))
    assert ours == sorted(map(_key, importlib.metadata.entry_points(group="zoo")))
    assert ("efficientmod", "zoo_efficientmod", "zoo-efficientmod", "0.1.0") in ours


def test_sections_comments_extras_and_the_first_distribution_of_a_name(tmp_path, monkeypatch):
    first = write_distribution(tmp_path / "a", "zoo-thirdparty-acme", {"acme": "zoo_acme:plugin [fast]"}, {}, "2.0")
    second = write_distribution(tmp_path / "b", "zoo_thirdparty.acme", {"acme": "old_acme"}, {}, "1.0")
    info = next(first.glob("*.dist-info"))
    (info / "entry_points.txt").write_text("# comment\n[console_scripts]\nacme = nope:main\n\n"
                                           "[zoo]\n; another comment\nacme = zoo_acme:plugin [fast]\n")
    monkeypatch.setattr(sys, "path", [str(first), str(second), str(tmp_path / "missing")])
    [ep] = entry_points("zoo")
    assert (ep.name, ep.value, ep.dist) == ("acme", "zoo_acme:plugin", ("zoo-thirdparty-acme", "2.0"))
    assert entry_points("console_scripts")[0].value == "nope:main"


def test_a_zip_on_sys_path_is_left_to_importlib_metadata(tmp_path, monkeypatch):
    archive = tmp_path / "plugins.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("zoo_zipped-0.1.dist-info/METADATA", "Metadata-Version: 2.1\nName: zoo-zipped\nVersion: 0.1\n")
        zf.writestr("zoo_zipped-0.1.dist-info/entry_points.txt", "[zoo]\nzipped = zoo_zipped\n")
    monkeypatch.setattr(sys, "path", [str(archive)])
    assert [(ep.name, ep.value) for ep in entry_points("zoo")] == [("zipped", "zoo_zipped")]


def test_zoo_list_does_not_import_importlib_metadata():
    code = ("import sys; from zoo.cli import main; sys.argv = ['zoo', 'list']\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "print('importlib.metadata' in sys.modules, file=sys.stderr)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stderr.strip().splitlines()[-1] == "False", out.stderr
