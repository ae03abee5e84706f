import sys

from .app import cli

cli(sys.argv)
