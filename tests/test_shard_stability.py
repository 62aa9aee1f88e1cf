"""A user's shard does not depend on the process that computes it.

Pods, retries and ``receval run`` workers each compute the shard of a user on their own, so the
assignment must not use Python's ``hash()``, which is salted per process (PYTHONHASHSEED) for
strings. Only one CLI test caught such a change, and only because its shards ran in separate
processes with random salts; with a fixed PYTHONHASHSEED it passed. Here two interpreters with
different, explicit salts compute the same assignment.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np

from receval.metrics.sharding import Shard, shard_of

COUNT = 7
STRING_IDS = [f"user-{k}" for k in range(300)] + ["", "ü", "a b", "7"]
INT_IDS = list(range(-5, 295))

CHILD = """
import json, sys
from receval.metrics.sharding import Shard, shard_of
ids = json.load(sys.stdin)
count = int(sys.argv[1])
print(json.dumps({
    "strings": shard_of(ids["strings"], count).tolist(),
    "ints": shard_of(ids["ints"], count).tolist(),
    "mask": [bool(v) for v in Shard(2, count).mask(ids["strings"])],
}))
"""


def assignment_in_a_process(hash_seed: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(COUNT)],
        input=json.dumps({"strings": STRING_IDS, "ints": INT_IDS}),
        capture_output=True, text=True, env={**os.environ, "PYTHONHASHSEED": hash_seed}, timeout=120, check=True,
    )
    return json.loads(done.stdout)


def test_shard_of_is_the_same_in_processes_with_different_hash_seeds():
    first, second = assignment_in_a_process("1"), assignment_in_a_process("2")
    assert first == second
    # and the same as in this process (whatever its own salt)
    assert first["strings"] == shard_of(STRING_IDS, COUNT).tolist()
    assert first["ints"] == shard_of(INT_IDS, COUNT).tolist()
    assert first["mask"] == Shard(2, COUNT).mask(STRING_IDS).tolist()
    # the assignment is a real partition: every shard gets users (so equality above is not trivial)
    assert set(first["strings"]) == set(range(COUNT)) and set(first["ints"]) == set(range(COUNT))
    # integer ids and their decimal strings are the same user
    assert shard_of(np.array(INT_IDS), COUNT).tolist() == shard_of([str(i) for i in INT_IDS], COUNT).tolist()
