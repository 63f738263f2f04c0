"""The core's own plugin: what zoo itself contributes through the same hooks plugins use.

Registered first by :func:`zoo.plugins.load_plugins` under the name ``zoo-core``.
"""

from __future__ import annotations
