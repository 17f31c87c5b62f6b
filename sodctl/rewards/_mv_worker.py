"""A math-verify worker: ``python -m sodctl.rewards._mv_worker``.

Reads one JSON request per line on stdin ({response, ground_truth, timeout_s}), grades it
in its main thread (so math-verify's signal timeouts work) and writes one JSON reply per
line on stdout ({correct, score, pred, detail}, or {error} for a bad ground truth).
"""

from __future__ import annotations

import json
import logging
import sys


def main() -> None:
    logging.disable(logging.WARNING)  # math-verify logs every timeout with the whole answer
    from sodctl.rewards.math_verify_grader import verify_here

    verify_here("\\boxed{1}", "1", None)  # import math-verify and sympy before saying ready
    sys.stdout.write(json.dumps({"ready": True}) + "\n")
    sys.stdout.flush()
    for line in sys.stdin:
        req = json.loads(line)
        try:
            r = verify_here(req["response"], req["ground_truth"], req["timeout_s"])
            reply = {"correct": r.correct, "score": r.score, "pred": r.pred, "detail": r.detail}
        except ValueError as e:
            reply = {"error": str(e)}
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
