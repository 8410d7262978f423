"""The zoo's checkpoints in the hub cache: pulling a model's file (`pull`), proving pulled files intact
(`verify`), and writing the Hub's pins into a zoo file (`pin`)."""
