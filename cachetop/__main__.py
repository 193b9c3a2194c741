"""Lets `python -m cachetop` run the CLI."""

from cachetop.cli import main

raise SystemExit(main())
