"""`python -m evals ...`: the same command as `rag eval`, usable without the CLI wiring."""

import argparse
import sys

from evals.cli import configure_parser, run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evals", description=__doc__)
    configure_parser(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
