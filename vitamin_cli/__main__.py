from vitamin_cli.cli import main

main()
