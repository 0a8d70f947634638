"""`python -m ttscale.cli`: the same command line as the `ttscale` entry point."""

from ttscale.cli import main

if __name__ == "__main__":
    main()
