"""The episode progress bar shared by the ``lam-ros`` commands that run episodes."""

from contextlib import contextmanager
from typing import Callable, Iterator


@contextmanager
def episode_progress(total: int, desc: str) -> Iterator[Callable[[bool], None]]:
    """
    Show a tqdm bar of ``total`` episodes; yield ``done(success)``, called once per episode.

    The bar's postfix counts successes so far, e.g. ``success=7/9``.
    """
    from tqdm import tqdm
    counts = {'ok': 0, 'n': 0}
    with tqdm(total=total, desc=desc, unit='ep') as bar:
        def done(success: bool) -> None:
            counts['ok'] += int(bool(success))
            counts['n'] += 1
            bar.set_postfix(success=f'{counts["ok"]}/{counts["n"]}')
            bar.update(1)

        yield done
