"""`python -m rag.cli ...`, as the tests and `rag` itself run it."""

import sys

from rag.cli.commands import main

sys.exit(main())
