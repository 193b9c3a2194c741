"""`python -m cachetop.engine`: the engine process (cachetop.engine.process)."""

import sys

from cachetop.engine.process import main

sys.exit(main())
