"""The ``steward`` command groups, one module each; ``pipelines.cli`` assembles them."""
