import sys

from plasticore.cli import main

sys.exit(main())
