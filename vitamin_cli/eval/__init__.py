"""Zero-shot evaluation: the tasks (`tasks`, `tasks.yaml`), their data (`data`), their metrics (`metrics`), one
model on one task (`zeroshot`), many of them here or on Ray (`sweep`), and what is saved and read back
(`results`)."""
