"""Train the forecast models: `python train.py --help`."""

import sys

from cryptopredict.training.cli import main

if __name__ == "__main__":
    sys.exit(main())
