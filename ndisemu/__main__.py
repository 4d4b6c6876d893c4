import sys

from ndisemu.cli import main

sys.exit(main())
