"""``ray``: shard tasks as a Ray Data dataset (``--executor ray [--ray-address ADDR]``).

Without an address a local Ray runtime is started with ``workers`` CPUs and stopped afterwards;
with one, the tasks run on that cluster. Tasks read and write shard files by path, so on a
multi-node cluster FMSTACK_HOME (the work folder) must be on storage every node mounts: given the
hub's ``settings``, entering a cluster checks that every node reaches them (``ray_reach``) before
any task runs."""

from __future__ import annotations

import logging
import pickle
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

from fmstack.errors import Unsupported
from fmstack.settings import Settings

T = TypeVar("T")
R = TypeVar("R")


class _Call:
    """Ray Data row function: runs ``fn`` on the row's task, keeps its index for ordering."""

    def __init__(self, fn: Callable[[Any], Any]) -> None:
        self.fn = fn

    def __call__(self, row: dict[str, Any]) -> dict[str, Any]:
        result = self.fn(pickle.loads(row["task"]))
        return {"index": row["index"], "result": pickle.dumps(result)}


class RayExecutor:
    def __init__(
        self, workers: int | None = None, address: str | None = None, settings: Settings | None = None
    ) -> None:
        self.workers, self.address, self.settings = workers, address, settings
        self._started = False

    def __enter__(self) -> RayExecutor:
        try:
            import ray
        except ImportError:
            raise Unsupported(
                "the ray executor needs Ray: pip install 'fmstack[ray]' (or use --executor local)"
            ) from None
        if not ray.is_initialized():
            options: dict[str, Any] = {
                "include_dashboard": False,
                "log_to_driver": False,
                "logging_level": logging.ERROR,
            }
            if self.address is None:
                options["num_cpus"] = self.workers
            ray.init(address=self.address, **options)
            self._started = True
        ray.data.DataContext.get_current().enable_progress_bars = False
        if self.address is not None and self.settings is not None:  # a cluster: can its nodes see the hub?
            from fmstack.data.executors.ray_reach import check_nodes_reach

            try:
                check_nodes_reach(self.settings)
            except BaseException:
                self.__exit__()
                raise
        return self

    def __exit__(self, *exc: object) -> None:
        if self._started:
            import ray

            ray.shutdown()
            self._started = False

    def map(self, fn: Callable[[T], R], items: Sequence[T]) -> Iterator[R]:
        if not items:
            return iter(())
        import ray

        # Tasks travel pickled: Ray Data would otherwise try (and fail) to make Arrow columns of them.
        rows = [{"index": i, "task": pickle.dumps(item)} for i, item in enumerate(items)]
        # One block per task so Ray schedules shards in parallel, one CPU each.
        dataset = ray.data.from_items(rows, override_num_blocks=len(rows)).map(_Call(fn))
        results = sorted(dataset.take_all(), key=lambda r: r["index"])
        return (pickle.loads(r["result"]) for r in results)
