"""Inference throughput: one tower measured (`measure`), on a machine whose load is watched (`machine`), a
selection swept here or on Ray (`sweep`), and what is saved and read back (`results`)."""
