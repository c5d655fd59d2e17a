"""``python -m linkd`` is the ``linkd`` command."""
import sys

from linkd.cli import main

__all__: list[str] = []

sys.exit(main())
