"""Record the reference trajectories of tests/test_oneshot_reference.py.

Run ONCE on the code whose results must be kept (it was run on main at
95c6401, before the methods moved onto the hook loop), from the repository
root: ``PYTHONPATH=. python tests/data/oneshot_reference/record.py``. It
sets one torch thread (as the tests do) and writes ``reference.json`` (alpha values after each of two epochs, the sum and
sum of squares of each supernet tensor, the train losses, the derived cell) and a format-2
checkpoint after epoch 1 of each built-in method.
"""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import torch  # noqa: E402

torch.set_num_threads(1)  # as tests/conftest.py: the thread count changes float sums

from nas.data import load_dataset  # noqa: E402
from nas.oneshot import create_method, save_checkpoint  # noqa: E402
from search_spaces import get_space  # noqa: E402
from tests.test_oneshot_reference import CASES, SYNTHETIC, snapshot  # noqa: E402

OUT = Path(__file__).parent


def main() -> None:
    data = load_dataset(SYNTHETIC, seed=0)
    result = {}
    for case, (name, opts) in CASES.items():
        settings = {"epochs": 2, "batch_size": 16, "check_memory": False, **opts}
        method = create_method(name, get_space("nb201", channels=4, cells=1), data, settings, seed=5)
        method.fit(lambda trained, metrics: setattr(trained, "stop_reason", "pause"))  # one epoch
        method.stop_reason = None
        if case == name:
            save_checkpoint(method, OUT / case)
        first = snapshot(method)
        method.fit()
        result[case] = {
            "method": name,
            "options": settings,
            "after_epoch_1": first,
            "after_epoch_2": snapshot(method),
        }
    (OUT / "reference.json").write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
