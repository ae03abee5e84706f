import sys

from services.composition.app import cli

cli(sys.argv)
