"""Render the collected data to ``DIR``: index.html, charts.html, papers/, models/, assets/.

The site is written to a fresh folder beside ``DIR`` and moved into place when complete, so ``DIR``
holds either the previous report or the new one, never half of one. A ``DIR`` that exists, is not
empty and was not written by ``zoo report`` (no ``.zoo-report`` marker) is refused, never replaced.
Plotly's own ``plotly.min.js`` (from the installed ``plotly`` package) is copied into ``DIR/assets``:
the pages load nothing from the network.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import importlib.util
import json
import os
import shutil
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from zoo.errors import NotInstalled, UserError

MARKER = ".zoo-report"
HERE = Path(__file__).resolve().parent
FILTERS = (("task", "task"), ("paper", "paper"), ("venue", "venue"), ("license", "license"),
           ("weights", "weights"), ("installed", "plugin"), ("status", "verify"))


def plotly_js() -> Path:
    """plotly.min.js of the installed ``plotly`` package (found without importing plotly)."""
    spec = importlib.util.find_spec("plotly")
    roots = list(spec.submodule_search_locations or []) if spec is not None else []
    for root in roots:
        path = Path(root) / "package_data" / "plotly.min.js"
        if path.is_file():
            return path
    raise NotInstalled("zoo report needs plotly for its charts (its plotly.min.js is shipped inside the site): "
                       "pip install 'zoo-core[plot]'")


def _num(value: Any) -> str:
    """A card's figure as printed (Figure's str); a measurement to 4 significant digits, never 0 for a small one."""
    from zoo.registry.cards import Figure

    if value is None:
        return "–"
    if isinstance(value, Figure) or isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    return f"{value:.4g}" if abs(value) < 10000 else f"{value:.0f}"


def environment() -> Any:
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(HERE / "templates")),
                             autoescape=True, trim_blocks=True, lstrip_blocks=True,
                             undefined=jinja2.StrictUndefined)
    env.filters["num"] = _num
    return env


def _check_target(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise UserError(f"-o {out}: is a file, not a folder")
    if out.is_dir() and any(out.iterdir()) and not (out / MARKER).is_file():
        raise UserError(f"-o {out}: the folder is not empty and holds no zoo report ({MARKER} missing); "
                        "refusing to overwrite it: give a new or empty folder")


def _script_json(data: Any) -> str:
    """JSON safe inside a <script> element: no '</' can close it."""
    return json.dumps(data, separators=(",", ":"), default=str).replace("</", "<\\/").replace("<!--", "<\\!--")


def render(data: Any, target: Path) -> dict[str, int]:
    """Write every page of ``data`` (a :class:`~zoo.report.site.collect.SiteData`) under ``target``."""
    from zoo import __version__
    from zoo.report.site.charts import chart_data, palette
    from zoo.report.site.collect import paper_slug
    from zoo.report.site.commands import bench_command, claim_command, eval_command
    from zoo.report.site.tables import paper_table

    env = environment()
    paper_slugs = {key: paper_slug(key) for key in data.papers}
    common = {
        "version": __version__, "generated": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "n_runs": sum(len(m.runs) for m in data.models) + len(data.orphans),
        "n_bench": sum(len(m.bench) for m in data.models), "results_path": str(data.results_path),
        "bench_path": str(data.bench_path), "skipped": data.skipped + data.bench_skipped,
    }
    for sub in ("models", "papers", "assets"):
        (target / sub).mkdir(parents=True, exist_ok=True)

    def write(rel: str, template: str, **context: Any) -> None:
        text = env.get_template(template).render(**common, **context)
        (target / rel).write_text(text, encoding="utf-8")

    options = {key: sorted({str(_attr(m, key)) for m in data.models} - {""}) for key, _ in FILTERS}
    write("index.html", "index.html", root="", models=data.models, filters=FILTERS, options=options,
          orphans=len(data.orphans))
    for entry in data.models:
        card = entry.card
        write(f"models/{entry.slug}.html", "model.html", root="../", m=entry, card=card, paper=entry.paper,
              pre=card.preprocess, claims=[(c, claim_command(card, c)) for c in entry.claims],
              runs=[(r, eval_command(r)) for r in entry.runs], bench=[(b, bench_command(b)) for b in entry.bench])
    groups = data.by_paper()
    listing = []
    for key, entries in sorted(groups.items(), key=lambda kv: data.papers[kv[0]].title.lower()):
        write(f"papers/{paper_slugs[key]}.html", "paper.html", root="../", paper=data.papers[key],
              table=paper_table(entries))
        listing.append({"slug": paper_slugs[key], "paper": data.papers[key], "n": len(entries)})
    write("papers/index.html", "papers.html", root="../", papers=listing)
    styles = palette(sorted(groups))
    charts = chart_data(data.models)
    papers = {key: {**styles[key], "title": data.papers[key].title} for key in groups}
    from zoo.report.plot import X_AXES

    by_task = Counter(m.card.task for m in data.models)  # the task most cards have is charted first
    write("charts.html", "charts.html", root="", tasks=sorted(charts, key=lambda t: (-by_task[t], t)), axes=[(k, v[0]) for k, v in X_AXES.items()],
          chart_json=_script_json({"charts": charts, "papers": papers}))
    for name in ("site.css", "site.js"):
        shutil.copyfile(HERE / "assets" / name, target / "assets" / name)
    shutil.copyfile(plotly_js(), target / "assets" / "plotly.min.js")
    (target / MARKER).write_text(f"written by zoo {__version__}\n", encoding="utf-8")
    return {"models": len(data.models), "papers": len(groups), "runs": common["n_runs"], "bench": common["n_bench"]}


def _attr(entry: Any, key: str) -> str:
    if key == "installed":
        return "installed" if entry.installed else "not installed"
    if key == "status":
        return entry.status
    if key == "weights":
        return entry.weights
    if key == "license":
        return entry.license or ""
    if key == "venue":
        return entry.paper.venue
    return str(getattr(entry.card, key))


def build_site(out: str | Path, *, results_file: str | Path | None = None,
               bench_file: str | Path | None = None, count: bool = False) -> dict[str, Any]:
    """Write the report to ``out``; return what was written (``models``, ``papers``, ``runs``,
    ``bench``, ``index``: the page to open). ``count``: count the params and MACs of cards with no
    bench record, as ``zoo verify`` does (builds each model on the meta device: slow).

    :raises UserError: ``out`` is a file, or a non-empty folder that holds no zoo report, or cannot be written.
    :raises NotInstalled: plotly (its JavaScript is shipped in the site) is missing.
    :raises ResultsError: the results or bench file exists but cannot be read.
    """
    from zoo.report.site.collect import collect

    out = Path(out).expanduser()
    _check_target(out)
    plotly_js()  # before any work: a missing plotly is one line, nothing written
    data = collect(results_file, bench_file, count=count)
    parent = out.absolute().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=parent))
    except OSError as exc:
        raise UserError(f"-o {out}: cannot write there: {exc.strerror or exc}") from None
    old = None
    try:
        summary = render(data, tmp)
        os.chmod(tmp, 0o755)
        _check_target(out)  # again: another process may have filled it meanwhile
        if out.exists():
            old = parent / f".{out.name}.old-{os.getpid()}"
            out.rename(old)
        tmp.rename(out)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None and not out.exists():
            with contextlib.suppress(OSError):
                old.rename(out)  # put the previous report back
        raise UserError(f"-o {out}: cannot write the report: {exc.strerror or exc}") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return {**summary, "index": str(out / "index.html"), "skipped": data.skipped, "bench_skipped": data.bench_skipped,
            "results_path": str(data.results_path)}
