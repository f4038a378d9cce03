"""python -m darkroom_batch: the same as the darkroom-batch command."""

import sys

from darkroom_batch.cli import main

sys.exit(main())
