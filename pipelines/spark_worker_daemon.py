"""Spark's Python worker daemon with the transform chain's imports done before the fork.

Spark starts one daemon per executor and forks every Python worker from it
(``spark.python.daemon.module``). The chain's stages import pandas, the ``regex`` module, the
rule engine and the privacy detectors on first use, so every forked worker paid those imports
again inside the first task it ran. Importing them here, once, lets every worker inherit them
copy-on-write. Only modules are imported: nothing that starts threads or opens files, which a
fork would copy half-done.

Great Expectations is not among them: the chain's row checks run without it
(``pipelines/quality_stage.py``), and importing it took the daemon tens of seconds on a loaded
machine, inside the first entity's transform. A contract whose row check needs GX imports it in
the workers that meet that check.
"""

from __future__ import annotations


def preload() -> None:
    """Import what every chain stage needs; a missing optional module is the stage's problem
    to report when it runs, not the daemon's."""
    import importlib

    for name in (
        "pandas",
        "pyarrow.compute",
        "regex",
        "cleaning_rules.engine",
        "privacy.detect",
        "privacy.treat",
        "pipelines.quality_stage",
    ):
        try:
            importlib.import_module(name)
        except ImportError:
            continue


if __name__ == "__main__":
    preload()
    from pyspark.daemon import manager

    manager()
