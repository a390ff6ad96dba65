import sys

from vgglab.cli import main

sys.exit(main())
