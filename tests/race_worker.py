"""A process that races another one on the same store and run ids (tests/test_run_ownership.py).

``python -m tests.race_worker STORE CONFIG_JSON RUN_PREFIX N START INTERVAL MODE``: for i in 0..N-1
it sleeps until ``START + i * INTERVAL`` (so that two workers started together hit run ``PREFIX-i``
within a few milliseconds of each other) and then runs, with the real receval code:

- ``prepare``: the prepare step;
- ``prepare-train``: the prepare step, then the train step of the first algorithm;
- ``run``: the whole pipeline in this process (``run_local(workers=1)``).

It prints one JSON line per run id: ``{"run", "ok", "error", "kind", "values"}``, where ``values``
maps each metric record to its value (``run`` mode) so that the caller can tell whose
configuration produced the results it got.
"""

from __future__ import annotations

import json
import sys
import time


def main(argv: list[str]) -> int:
    store_uri, config_json, prefix, n, start, interval, mode = argv
    from receval.config import RunConfig
    from receval.errors import ReceValError
    from receval.pipeline import steps
    from receval.pipeline.local import run_local
    from receval.storage import open_store

    config = RunConfig.from_mapping(json.loads(config_json))
    store = open_store(store_uri)
    for i in range(int(n)):
        run_id = f"{prefix}-{i}"
        delay = float(start) + i * float(interval) - time.time()
        if delay > 0:
            time.sleep(delay)
        line: dict = {"run": run_id, "ok": True, "error": None, "kind": None, "values": None}
        try:
            if mode == "prepare":
                steps.prepare_step(store, run_id, config)
            elif mode == "prepare-train":  # the step right after prepare needs the dataset published
                steps.prepare_step(store, run_id, config)
                steps.train_step(store, run_id, config.labels[0])
            else:
                result = run_local(config, store_uri, run_id=run_id, workers=1)
                line["values"] = {
                    f"{r.get('algorithm')}|{r['metric']}|{r.get('relevance')}|{r.get('discount')}|{r.get('cutoff')}":
                        r["value"] for r in result.records if r.get("kind", "metric") == "metric"
                }
        except ReceValError as exc:
            line.update(ok=False, error=str(exc), kind=type(exc).__name__)
        print(json.dumps(line), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
