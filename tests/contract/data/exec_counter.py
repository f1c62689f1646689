"""A pretend group for the ``exec`` provider contract tests: its size is a number in a file.

``exec_counter.py scale`` sets the size to ``$AS_TO`` (as alertscaler's exec provider passes it);
``exec_counter.py status`` prints ``{"current": n, "members": [{"id": "exec-1", ...}, ...]}``. The file is
``count`` in the directory named by ``$EXEC_COUNTER_DIR``. Members are numbered from 1, so growing keeps
the existing ids and shrinking drops the highest.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    count_file = Path(os.environ["EXEC_COUNTER_DIR"]) / "count"
    current = int(count_file.read_text()) if count_file.exists() else 0
    if argv == ["scale"]:
        desired = int(os.environ["AS_TO"])
        sys.stdin.read()  # the notification; not needed here
        temporary = count_file.with_suffix(".tmp")
        temporary.write_text(str(desired))
        os.replace(temporary, count_file)
        print(f"count {current} -> {desired}")
        return 0
    if argv == ["status"]:
        members = [{"id": f"exec-{i}", "address": None} for i in range(1, current + 1)]
        print(json.dumps({"current": current, "members": members}))
        return 0
    print(f"usage: {sys.argv[0]} scale|status", file=sys.stderr)
    return 64


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
