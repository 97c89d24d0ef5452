"""The bundle's `colorizer` executable: the desktop window (colorizer.desktop.app.main)."""

import sys

from colorizer.desktop.app.main import main

if __name__ == "__main__":
    sys.exit(main())
