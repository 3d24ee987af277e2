"""Run ``python -m lam_ros.cli`` as ``lam-ros``."""

import sys

from lam_ros.cli import main

sys.exit(main())
