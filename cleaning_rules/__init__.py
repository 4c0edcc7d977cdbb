"""YAML rule packs that clean text fields, and the engine that loads and applies them.

The entry point is :mod:`cleaning_rules.engine` (``load_packs``, ``RuleSet.apply``,
``RuleSet.apply_batch`` and ``RuleSet.apply_columns``, ``RecordResult``, ``ColumnsResult``); the
pack format is described in ``cleaning_rules/README.md`` and, for editors, in
``pack.schema.json``.
"""
