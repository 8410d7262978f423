"""What vitamin shows: the output sink every command prints through (`sink`), progress on stderr (`progress`),
the zoo as tables and the `show` view (`render`, `texttable`), measured results (`results`), models side by side
(`compare`) and pictures (`plot`)."""
