"""PII detection and treatment, differential privacy and the privacy-budget ledger.

- ``entities`` / ``validators`` / ``detect``: PII types as data, checksum validators,
  the ``Detector`` that finds them in text.
- ``policy`` / ``treat`` / ``generalize`` / ``keys`` / ``stage``: a dataset's treatment policy
  (YAML), the treatments it names, and ``PrivacyStage``, the transform-chain stage.
- ``dp`` / ``aggregate`` / ``release``: DP noise, DP aggregates with contribution bounding, and
  their publication to the curated zone.
- ``accounting`` / ``ledger`` / ``dpsgd``: composition with opacus accountants, the budget
  ledger in the lake, DP-SGD within the remaining budget.

Pure Python over values and Arrow batches; never imports Spark or Flink. torch and opacus are
imported only where a composition or a training needs them.
"""
