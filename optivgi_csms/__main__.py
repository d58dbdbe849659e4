"""Allow ``python -m optivgi_csms``."""

import sys

from optivgi_csms.cli import main

sys.exit(main())
