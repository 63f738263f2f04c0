"""`zoo report -o DIR` (issue #15): the site is generated from records written with zoo.records' own
writer into a temporary zoo home, loaded in a real headless Chromium, and the rendered DOM (after the
page scripts ran) is asserted on; the screenshot must not be blank.

Chromium is started once: a harness page outside the site loads the pages in iframes (the hash
parameters drive the filters, since --dump-dom cannot click) and copies each rendered document into
its own DOM, which --dump-dom prints while --screenshot photographs it."""

from __future__ import annotations

import html
import io
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from zoo.claims import verify
from zoo.cli import cli
from zoo.records import Result, append, append_bench
from zoo.registry import lookup
from zoo.report.site import build as site_build
from zoo.report.site.charts import palette
from zoo.report.site.collect import SiteData, paper_slug, slug
from zoo.report.site.tables import spearman

PAGES = [
    "index.html",
    "index.html#task=object-detection",
    "index.html#status=off",
    "index.html#q=efficientmod&sort=reported&dir=desc",
    "models/efficientmod-xxs.html",
    "papers/efficientmod.html",
    "papers/yolov6.html",
    "charts.html#task=image-classification&x=gmacs&source=measured",
]
HOSTILE = '"><img src=x onerror=alert(1)>'

HARNESS = """<!doctype html><html><body style="margin:0">
<div id="out" hidden></div>
<script>
const pages = %s;
for (const url of pages) {
  const f = document.createElement("iframe");
  f.src = "site/" + url; f.width = 1280; f.height = 700; f.style.border = "0"; f.style.display = "block";
  document.body.appendChild(f);
}
function collect() {
  const frames = Array.from(document.querySelectorAll("iframe"));
  if (!frames.every((f) => f.contentDocument && f.contentDocument.documentElement.dataset.loadMs)) {
    setTimeout(collect, 20); return;
  }
  for (const f of frames) {
    const s = document.createElement("section");
    s.dataset.url = f.getAttribute("src").slice(5);
    s.textContent = f.contentDocument.documentElement.outerHTML;
    document.getElementById("out").appendChild(s);
  }
  document.body.dataset.done = "1";
}
window.addEventListener("load", collect);
</script></body></html>
"""


def chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def _records(home: Path) -> None:
    """Eval and bench records through the one writer: a claim that holds, one that is off, a run that
    cannot judge (bf16), a run of a model with no card and a run with a hostile dataset name."""
    xxs = lookup.get_card("efficientmod-xxs")
    v6 = lookup.get_card("yolov6-s")
    manual = {"origin": "manual", "sha256": "ab" * 32, "source": "hand-added"}
    append(Result(model="efficientmod-xxs", dataset="imagenet", protocol=verify.claim_protocol(xxs, "imagenet"),
                  metrics={"top1": 77.15, "top5": 93.2}, weights=manual, images=50000, device="Test CPU",
                  time="2026-11-30T00:00:00Z"))
    append(Result(model="efficientmod-xxs", dataset=HOSTILE, metrics={"top1": 1.0}, weights=manual))
    coco = float(v6.reported.metrics["coco"]["map"]) + 5.0
    append(Result(model="yolov6-s", dataset="coco", task="object-detection", protocol=verify.claim_protocol(v6, "coco"),
                  metrics={"map": coco}, weights={"origin": "official", "sha256": "cd" * 32}, images=5000))
    append(Result(model="yolov6-n", dataset="coco", task="object-detection", precision="bf16",
                  metrics={"map": 37.5}, weights={"origin": "official"}))
    append(Result(model="<script>alert(1)</script>", dataset="imagenet", metrics={"top1": 50.0}))
    with open(home / "results.jsonl", "a", encoding="utf-8") as fh:
        fh.write("{not json\n")
    for name, params, gmacs, latency in (("efficientmod-xxs", 4.65, 0.61, 12.0), ("efficientmod-xs", 6.6, 0.8, 15.0),
                                         ("efficientmod-s", 12.9, 1.4, 20.0)):
        append_bench(Result(model=name, dataset="synthetic", kind="bench", device="Test CPU",
                            metrics={"params_m": params, "gmacs": gmacs, "latency_ms": latency,
                                     "throughput_img_s": 100.0},
                            details={"batch_size": 16, "device_type": "cpu"}))


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    browser = chromium()
    if browser is None:
        pytest.skip("no chromium binary on PATH (Debian: apt-get install chromium; .ci/run installs it)")
    root = tmp_path_factory.mktemp("report")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ZOO_HOME", str(root / "home"))
        lookup.reset()
        try:
            _records(root / "home")
            runner = CliRunner()
            listed = json.loads(runner.invoke(cli, ["list", "--json"]).stdout)
            result = runner.invoke(cli, ["report", "-o", str(root / "site")])
        finally:
            lookup.reset()
    assert result.exit_code == 0, result.output
    (root / "harness.html").write_text(HARNESS % json.dumps(PAGES), encoding="utf-8")
    shot = root / "shot.png"
    proc = subprocess.run(
        [browser, "--headless", "--disable-gpu", "--no-sandbox", f"--user-data-dir={root / 'profile'}",
         "--allow-file-access-from-files", "--virtual-time-budget=5000", "--window-size=1280,1400",
         f"--screenshot={shot}", "--dump-dom", (root / "harness.html").as_uri()],
        capture_output=True, text=True, timeout=120)
    assert 'data-done="1"' in proc.stdout, proc.stderr[-2000:]
    pages = {html.unescape(url): html.unescape(body) for url, body in
             re.findall(r'<section data-url="([^"]*)">(.*?)</section>', proc.stdout, re.S)}
    return {"root": root, "listed": listed, "cli": result, "pages": pages, "shot": shot}


def _rows(page: str) -> tuple[list[str], list[str]]:
    """(every catalog row's model, the visible ones), in the order the page shows them."""
    rows = re.findall(r"<tr ([^>]*data-name=\"[^\"]*\"[^>]*)>", page)
    names = [re.search(r'data-name="([^"]*)"', r).group(1) for r in rows]
    visible = [n for n, r in zip(names, rows, strict=True) if "hidden" not in r.split("data-name")[0]
               and not re.search(r'\shidden(=""|\s|$)', " " + r)]
    return names, visible


def test_catalog_has_a_row_per_card_of_zoo_list(site: dict[str, Any]) -> None:
    names, visible = _rows(site["pages"]["index.html"])
    assert len(names) == len(site["listed"]) and sorted(names) == sorted(r["name"] for r in site["listed"])
    assert visible == names
    assert f'data-shown="{len(names)}"' in site["pages"]["index.html"]


def test_a_hash_filter_reduces_the_rows(site: dict[str, Any]) -> None:
    names, visible = _rows(site["pages"]["index.html#task=object-detection"])
    detection = sorted(r["name"] for r in site["listed"] if r["task"] == "object-detection")
    assert sorted(visible) == detection and 0 < len(visible) < len(names)
    assert f">{len(detection)} of {len(names)} models<" in site["pages"]["index.html#task=object-detection"]
    assert _rows(site["pages"]["index.html#status=off"])[1] == ["yolov6-s"]  # the claim 5 points off


def test_search_and_sort_come_from_the_hash(site: dict[str, Any]) -> None:
    page = site["pages"]["index.html#q=efficientmod&sort=reported&dir=desc"]
    _, visible = _rows(page)
    reported = {r["name"]: (r["reported"] or {}).get("imagenet", {}).get("top1") for r in site["listed"]}
    assert visible and all("efficientmod" in n for n in visible)
    values = [reported[n] for n in visible if reported[n] is not None]
    assert values == sorted(values, reverse=True)
    assert 'data-sort="reported" class="num" aria-sort="descending"' in page


def test_model_page_shows_claims_runs_and_commands(site: dict[str, Any]) -> None:
    page = site["pages"]["models/efficientmod-xxs.html"]
    assert re.search(r'data-claim="imagenet.top1" data-status="holds"', page)
    assert re.search(r'data-claim="params_m" data-status="holds"', page)  # 4.65 M is the printed 4.7
    assert "EfficientMod README @ ma-xu/EfficientMod@ec04df6" in page  # the claims' source
    assert "zoo eval efficientmod-xxs --dataset imagenet" in page
    assert "zoo bench efficientmod-xxs --device cpu --batch-size 16" in page
    assert "ab" * 32 in page or "abababababab" in page  # the run's weights sha256
    assert HOSTILE not in page and "&lt;img src=x" in page  # a hostile dataset name is text, not markup


def test_paper_table_shows_reported_beside_measured(site: dict[str, Any]) -> None:
    page = site["pages"]["papers/efficientmod.html"]
    head = page.split("<tbody>")[0]
    assert head.count(">reported</th>") == head.count(">measured here</th>") >= 5
    row = re.search(r'<tr data-model="efficientmod-xxs">(.*?)</tr>', page, re.S).group(1)
    assert re.search(r'class="num rep">77.1</td><td class="num here s-holds"[^>]*>77.15</td>', row)
    # latency measured on another CPU: shown, not judged, and ranked against the paper's (3 models agree)
    assert "unjudged" in row and ">12</td>" in row
    assert "ρ = <strong>1.000</strong> over 3 models" in page
    v6 = site["pages"]["papers/yolov6.html"]
    assert re.search(r'<tr data-model="yolov6-s">.*?class="num here s-off"', v6, re.S)


def test_charts_draw_measured_points_with_plotly(site: dict[str, Any]) -> None:
    page = site["pages"]["charts.html#task=image-classification&x=gmacs&source=measured"]
    assert 'data-points="1"' in page  # efficientmod-xxs: judged top-1 and a bench record
    # drawn by the bundled plotly: one marker
    assert 'class="main-svg"' in page and len(re.findall(r'<path class="point[ "]', page)) == 1


def test_screenshot_is_not_blank(site: dict[str, Any]) -> None:
    from PIL import Image

    image = Image.open(io.BytesIO(site["shot"].read_bytes())).convert("RGB")
    colours = image.getcolors(maxcolors=1 << 20)
    assert colours is not None and len(colours) > 10
    assert max(count for count, _ in colours) < image.width * image.height * 0.97  # not (nearly) all one colour


def test_site_is_offline_and_notes_skips_and_orphans(site: dict[str, Any]) -> None:
    out = site["root"] / "site"
    assert (out / "assets" / "plotly.min.js").stat().st_size > 1_000_000
    for page in [out / "index.html", out / "charts.html", *out.glob("models/*.html"), *out.glob("papers/*.html")]:
        text = page.read_text(encoding="utf-8")
        assert not re.search(r'(src|href)="(https?:)?//[^"]*\.(js|css)', text), page  # no CDN
    index = (out / "index.html").read_text(encoding="utf-8")
    assert "1 eval run(s) of models with no card" in index
    assert "1 unreadable line(s) were skipped" in index
    assert "skipped 1 unreadable line(s)" in site["cli"].stderr
    assert not any("script" in p.name for p in out.glob("models/*"))
    assert not [p for p in site["root"].iterdir() if ".tmp-" in p.name or ".old-" in p.name]


# -- bad input ---------------------------------------------------------------------------------------


def _run(*args: str) -> Any:
    return CliRunner().invoke(cli, ["report", *args])


def _one_line_error(result: Any, code: int, *words: str) -> None:
    assert result.exit_code == code, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert all(w in lines[0] for w in words), lines[0]


def test_output_that_is_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("mine")
    _one_line_error(_run("-o", str(tmp_path / "f")), 2, "is a file")
    assert (tmp_path / "f").read_text() == "mine"


def test_a_foreign_folder_is_never_overwritten(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "keep.txt").write_text("mine")
    _one_line_error(_run("-o", str(tmp_path / "docs")), 2, "not empty", "refusing")
    assert os.listdir(tmp_path / "docs") == ["keep.txt"] and sorted(os.listdir(tmp_path)) == ["docs"]


def test_results_path_that_is_a_folder_is_a_usage_error(tmp_path: Path) -> None:
    result = _run("-o", str(tmp_path / "site"), "--results", str(tmp_path))
    _one_line_error(result, 2, "--results")
    assert not (tmp_path / "site").exists()


def test_missing_plotly_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(site_build.importlib.util, "find_spec", lambda name: None)
    _one_line_error(_run("-o", str(tmp_path / "site")), 1, "plotly", "pip install")
    assert os.listdir(tmp_path) == []


def _empty(tmp_path: Path) -> SiteData:
    return SiteData(models=[], papers={}, results_path=tmp_path / "r.jsonl", bench_path=tmp_path / "b.jsonl")


def test_an_earlier_report_is_replaced_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    old = tmp_path / "site"
    old.mkdir()
    (old / site_build.MARKER).write_text("old")
    (old / "stale.html").write_text("old page")
    monkeypatch.setattr("zoo.report.site.collect.collect", lambda *a, **k: _empty(tmp_path))
    result = _run("-o", str(old))
    assert result.exit_code == 0, result.output
    assert not (old / "stale.html").exists() and (old / "index.html").is_file()
    assert "0 of 0 models" in (old / "index.html").read_text()
    assert sorted(os.listdir(tmp_path)) == ["site"]  # no temporary or old folder left behind


def test_an_interrupted_report_leaves_the_previous_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    old = tmp_path / "site"
    old.mkdir()
    (old / site_build.MARKER).write_text("old")
    (old / "index.html").write_text("previous report")
    monkeypatch.setattr("zoo.report.site.collect.collect", lambda *a, **k: _empty(tmp_path))

    def interrupted(data: Any, target: Path) -> None:
        (target / "index.html").write_text("half")
        raise KeyboardInterrupt

    monkeypatch.setattr(site_build, "render", interrupted)
    result = _run("-o", str(old))
    assert result.exit_code == 130
    assert (old / "index.html").read_text() == "previous report"
    assert sorted(os.listdir(tmp_path)) == ["site"]


# -- pieces ------------------------------------------------------------------------------------------


def test_palette_is_zoo_plots_and_never_repeats_for_forty_papers() -> None:
    from zoo.report import plot

    keys = [f"paper{i}" for i in range(40)]
    styles = palette(keys)
    assert len({(s["color"], s["symbol"]) for s in styles.values()}) == 40
    assert set(s["symbol"] for s in styles.values()) <= {"circle", "square", "triangle-up", "diamond", "triangle-down",
                                                           "cross", "x", "star", "triangle-left", "triangle-right"}
    for key, style in plot.palette(keys, universe=keys).items():  # the same paper looks the same in zoo plot
        assert styles[key]["color"] == style.colour


def test_spearman() -> None:
    assert spearman([(1, 10), (2, 20), (3, 30)]) == pytest.approx(1.0)
    assert spearman([(1, 30), (2, 20), (3, 10)]) == pytest.approx(-1.0)
    assert spearman([(1, 1), (2, 3), (3, 2), (4, 4)]) == pytest.approx(0.8)
    assert spearman([(1, 1), (2, 2)]) is None and spearman([(1, 5), (2, 5), (3, 5)]) is None


def test_slug_is_a_safe_distinct_file_name() -> None:
    assert slug("efficientmod-xxs") == "efficientmod-xxs"
    assert slug("a/b") != slug("a_b") and "/" not in slug("../../etc/passwd")
    assert slug("<script>").startswith("script-")
    assert paper_slug("index") != "index" and paper_slug("yolov6") == "yolov6"  # papers/index.html lists them


def _bench(device: str, batch: int, throughput: float, precision: str = "fp32") -> Result:
    return Result(model="fastervit-0", dataset="synthetic", kind="bench", device=device, precision=precision,
                  metrics={"params_m": 31.4, "gmacs": 3.3, "throughput_img_s": throughput},
                  details={"batch_size": batch})


CASES = [
    (_bench("NVIDIA A100-SXM4-80GB", 128, 5700.0), "holds", ""),  # the paper's 5802 img/s, within 10 %
    (_bench("NVIDIA A100-SXM4-80GB", 128, 4000.0), "off", ""),
    (_bench("NVIDIA A100-SXM4-80GB", 64, 5700.0), "not measured", "batch 64, the claim batch 128"),
    (_bench("NVIDIA A100-SXM4-80GB", 128, 9000.0, "bf16"), "not measured", "ran bf16, the claim fp32"),
    (_bench("Test CPU", 128, 5700.0), "not measurable", "paper used A100"),
    (None, "not measured", "no bench record: zoo bench fastervit-0"),
]


def test_speed_claims_are_judged_by_verify_with_the_bench_record() -> None:
    from zoo.report.site.collect import speed_claims

    card = lookup.get_card("fastervit-0")  # one catalog load for every case
    for record, status, note in CASES:
        (claim,) = [c for c in speed_claims(card, record) if c.claim == "throughput"]
        assert claim.status == status and note in claim.note, (record, claim)
        assert claim.measured == (record.metrics["throughput_img_s"] if status in ("holds", "off") else None)


def test_a_card_whose_judging_fails_is_an_error_row_not_a_crash(monkeypatch: pytest.MonkeyPatch) -> None:
    from zoo.report.site import collect as site_collect

    real = site_collect.judge

    def judge(card: Any, *args: Any) -> Any:
        if card.name == "yolov6-s":
            raise RuntimeError("a plugin's bug\nsecond line")
        return real(card, *args)

    monkeypatch.setattr(site_collect, "judge", judge)
    data = site_collect.collect()
    (broken,) = [m for m in data.models if m.card.name == "yolov6-s"]
    assert broken.status == "error" and broken.claims[0].note == "RuntimeError: a plugin's bug"
    assert not [m for m in data.models if m is not broken and any("RuntimeError" in c.note for c in m.claims)]


def test_count_judges_params_and_macs_as_verify_counts_them(monkeypatch: pytest.MonkeyPatch) -> None:
    from zoo.errors import BuildError
    from zoo.measure import bench
    from zoo.report.site.collect import collect

    def counts(name: str, **kwargs: Any) -> dict[str, Any]:
        if name == "yolov6-s":
            raise BuildError("yolov6-s: cannot build")
        return {"params": 4_650_000, "macs": 610_000_000, "counted_on": "meta"}

    monkeypatch.setattr(bench, "static_counts", counts)
    models = {m.card.name: m for m in collect(count=True).models}
    claims = {c.claim: c for c in models["efficientmod-xxs"].claims}
    assert (claims["params_m"].status, claims["params_m"].measured) == ("holds", 4.65)
    assert (claims["gmacs"].status, claims["gmacs"].measured) == ("holds", 0.61)
    assert [(c.claim, c.status) for c in models["yolov6-s"].claims][0] == ("build", "error")
    card_only = [m for m in models.values() if m.card.card_only and m.card.reported and m.card.reported.params_m]
    assert all(c.status == "not measurable" for m in card_only for c in m.claims if c.claim == "params_m")
    without = {c.claim: c.status for c in next(m for m in collect().models if m.card.name == "efficientmod-xxs").claims}
    assert without["params_m"] == "not measured"  # no --count, no bench record: nothing built
