"""``python -m colorizer.desktop.app``: the desktop app."""

import sys

from colorizer.desktop.app.main import main

sys.exit(main())
