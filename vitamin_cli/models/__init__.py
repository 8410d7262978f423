"""The zoo's networks, built and measured: their open_clip configs (`arch`), devices and dtypes (`device`), the
batch back-off (`batching`), strict loading (`loading`), params and MACs (`audit`), and throughput (`bench` for
one tower, `bench_sweep` for a selection, `bench_results` for what is saved and read back)."""
