"""Seeds derived from (run seed, step, candidate): a resumed run redraws exactly what the
uninterrupted run would have, because no random state is carried between steps."""

from __future__ import annotations

import hashlib


def derive_seed(*parts: object) -> int:
    digest = hashlib.sha256("/".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF
