import sys

from rtbuild.cli._main import main

sys.exit(main())
