"""`python -m juststorage` runs the command line."""

from juststorage.cli.main import main

main()
