"""`DaskExecutor`: measurement jobs on a Dask distributed cluster (`--scheduler tcp://HOST:PORT`).

Each job carries its C sources and what the client measures with (msfsim.measure.remote); a
worker writes them to a temporary directory of its own and never touches the client's
measurement cache: the client stores the rows as they come back (`Measurer._collect`). A job
that raises is retried by Dask (`retries`); a worker that dies mid-job has its job rescheduled
by the scheduler on another worker, and a job whose workers keep dying (Dask's KilledWorker)
becomes an error row: the candidate is dropped with that cause and the search goes on.
`cancel_all` cancels the cluster futures (Ctrl-C); `shutdown` closes the client (the cluster
itself is the user's: it keeps running).

Connecting is bounded: an unreachable scheduler, or one without workers, is a one-line error
(`ToolMissing`, exit 4) within `connect_timeout` seconds, not a hang; without the `distributed`
package installed the error says `pip install 'msfsim[dask]'`.
"""
from __future__ import annotations

import concurrent.futures as cf
import threading
import uuid
from typing import Any

from .. import ToolMissing
from .jobs import _ROW, Job

INSTALL_HINT = "pip install 'msfsim[dask]'"
CONNECT_TIMEOUT_S = 5.0
WORKERS_TIMEOUT_S = 30.0
RETRIES = 2


def _distributed() -> Any:
    try:
        import distributed
    except ImportError:
        raise ToolMissing(f"--scheduler needs Dask distributed, which is not installed: "
                          f"{INSTALL_HINT}") from None
    return distributed


def check_address(address: str) -> str:
    """`tcp://HOST:PORT` (tls:// and other Dask schemes pass): a bad one is exit 2."""
    from .. import MsfsimError
    a = address.strip()
    if "://" not in a or not a.split("://", 1)[1] or ":" not in a.split("://", 1)[1]:
        raise MsfsimError(f"--scheduler {address!r}: expected an address like "
                          f"tcp://HOST:PORT (what `dask scheduler` prints)")
    return a


class DaskExecutor:
    """The Executor interface (submit / cancel_all / shutdown) over a `distributed.Client`."""

    remote = True   # jobs must carry their sources (the Measurer builds them so)

    def __init__(self, address: str, connect_timeout: float = CONNECT_TIMEOUT_S,
                 retries: int = RETRIES, workers_timeout: float = WORKERS_TIMEOUT_S,
                 client: Any = None):
        distributed = _distributed()
        self.address = check_address(address) if client is None else address
        self.retries = retries
        self._own_client = client is None
        if client is None:
            try:
                client = distributed.Client(self.address, timeout=connect_timeout,
                                            set_as_default=False)
            except (OSError, TimeoutError, ValueError) as exc:
                why = " ".join(str(exc).split())[:160] or type(exc).__name__
                raise ToolMissing(f"cannot reach the Dask scheduler at {self.address} within "
                                  f"{connect_timeout:g} s: {why}") from None
        self.client = client
        try:
            self.client.wait_for_workers(1, timeout=workers_timeout)
        except (TimeoutError, OSError):
            self.shutdown()
            raise ToolMissing(f"the Dask scheduler at {self.address} has no worker (none "
                              f"joined within {workers_timeout:g} s): start one with `dask "
                              f"worker {self.address}`") from None
        self._lock = threading.Lock()
        self._pending: dict[Any, cf.Future] = {}
        self._killed = getattr(__import__("distributed.scheduler", fromlist=["KilledWorker"]),
                               "KilledWorker", ())

    @classmethod
    def on_client(cls, client: Any, **kw: Any) -> "DaskExecutor":
        """An executor over an existing client (e.g. a LocalCluster's); the client stays the
        caller's to close."""
        return cls(getattr(client.scheduler, "address", "client"), client=client, **kw)

    def workers(self) -> list[str]:
        return sorted(self.client.scheduler_info().get("workers", {}))

    def submit(self, job: Job) -> cf.Future:
        from .remote import measure_remote
        out: cf.Future = cf.Future()
        fut = self.client.submit(measure_remote, job, retries=self.retries, pure=False,
                                 key=f"msfsim-measure-{job.key[:16]}-{uuid.uuid4().hex[:8]}")
        with self._lock:
            self._pending[fut] = out

        def done(f: Any) -> None:
            with self._lock:
                self._pending.pop(f, None)
            if out.done():
                return
            try:
                if f.status == "cancelled":
                    out.cancel() or out.set_exception(cf.CancelledError())
                    return
                out.set_result(f.result())
            except self._killed as exc:  # its workers died: the candidate is dropped
                out.set_result({**_ROW, "detail": f"the Dask workers measuring it died "
                                                  f"({' '.join(str(exc).split())[:200]})"})
            except BaseException as exc:  # noqa: BLE001 - handed to the waiting measurer
                if not out.done():
                    out.set_exception(exc)
        fut.add_done_callback(done)
        return out

    def cancel_all(self) -> None:
        """Cancel every job not finished (Ctrl-C): the cluster stops them."""
        with self._lock:
            pending, self._pending = dict(self._pending), {}
        if pending:
            try:
                self.client.cancel(list(pending), force=True)
            except Exception:  # the scheduler is gone: nothing left to cancel there
                pass
        for out in pending.values():
            out.cancel()

    def shutdown(self) -> None:
        if self._own_client and self.client is not None:
            try:
                self.client.close(timeout=5)
            except Exception:
                pass
