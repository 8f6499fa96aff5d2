"""`python -m core`: Ctrl-C while the CLI starts up (importing torch takes seconds) or outside a
search or training job ends it with one line and exit 130, not a KeyboardInterrupt traceback.
SIGTERM there ends it the same way with 143 (during a search or job, core.runner.foreground
turns either signal into a stop at the next batch boundary)."""

import signal
import sys


class _Terminated(BaseException):
    """SIGTERM outside a foreground run: unwinds like Ctrl-C (open transactions roll back)."""


def _on_sigterm(signum, frame):
    raise _Terminated


signal.signal(signal.SIGTERM, _on_sigterm)
try:
    from core.cli.main import main

    sys.exit(main())
except KeyboardInterrupt:
    print("error: interrupted", file=sys.stderr)
    sys.exit(130)
except _Terminated:
    print("error: terminated", file=sys.stderr)
    sys.exit(143)
