"""``zoo report -o DIR``: a static site of every card's claims beside what was measured here (issue #15).

The pages are rendered from the data :mod:`zoo.report.site.collect` gathers with the functions
``zoo verify`` and ``zoo results`` use (:mod:`zoo.claims.verify` judges every claim, :mod:`zoo.records`
reads every record); nothing here judges a claim or reads a results line itself.
"""

from zoo.report.site.build import build_site

__all__ = ["build_site"]
