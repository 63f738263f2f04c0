"""Evaluation data: dataset adapters (ImageNet family, class folders), transforms, loading.

Importing this package is light; torch is imported by :mod:`zoo.tasks.classification.data.loader` only.
"""

from __future__ import annotations

from zoo.tasks.classification.data.datasets import ADAPTERS, EvalSet
from zoo.tasks.classification.data.transforms import EvalPreprocess, EvalTransform

__all__ = ["ADAPTERS", "EvalSet", "EvalPreprocess", "EvalTransform"]
