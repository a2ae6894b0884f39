"""PyInstaller's entry script: the ``tabmail`` executable (window with no command, CLI with one)."""

import sys

from tabmail.launcher import main

if __name__ == "__main__":
    sys.exit(main())
