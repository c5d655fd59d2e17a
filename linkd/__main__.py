"""``python -m linkd`` is the ``linkd`` command."""
import sys

from linkd.cli import main

sys.exit(main())
