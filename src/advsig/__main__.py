"""``python -m advsig`` (and ``accelerate launch -m advsig ...``)."""

from advsig.cli.app import main

main()
