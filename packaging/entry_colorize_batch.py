"""The bundle's `colorize-batch` executable: the batch command (colorizer.desktop.cli), same options."""

import sys

from colorizer.desktop.cli import main

if __name__ == "__main__":
    sys.exit(main())
