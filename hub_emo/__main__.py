import sys

from hub_emo.cli import main

sys.exit(main())
