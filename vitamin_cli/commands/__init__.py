"""One module per command; `vitamin_cli.cli` assembles them."""
