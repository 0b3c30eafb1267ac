"""`python -m publisher` runs the same CLI as the `publisher` script."""

from publisher.cli.main import main

main()
