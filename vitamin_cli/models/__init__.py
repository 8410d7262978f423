"""The zoo's networks, built and checked: their open_clip configs (`arch`), devices and dtypes (`device`), the
batch back-off (`batching`), strict loading (`loading`), params and MACs (`audit`). Their throughput is
`vitamin_cli.bench`'s."""
