"""Script run on the machine: the tools folder holds this file beside the `trainrig_remote` package."""

import sys

from trainrig_remote.main import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
