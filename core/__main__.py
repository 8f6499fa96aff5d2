"""`python -m core`: Ctrl-C while the CLI starts up (importing torch takes seconds) or outside a
search or training job ends it with one line and exit 130, not a KeyboardInterrupt traceback."""
import sys

try:
    from core.cli.main import main

    sys.exit(main())
except KeyboardInterrupt:
    print("error: interrupted", file=sys.stderr)
    sys.exit(130)
