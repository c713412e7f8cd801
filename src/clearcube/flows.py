"""The main job as a Prefect 3 flow (the ``prefect`` extra: ``pip install clearcube[prefect]``).

:func:`clearcube_run` takes the arguments of :func:`clearcube.run` and runs the same stages,
each a Prefect task calling the same :class:`clearcube.job.Job` method that ``clearcube run``
calls: search, plan, screen, decide, read, products, audit. The stages that read remote data
(search, plan with its header probes, screen, read) are retried on I/O errors; an error in the
inputs (a config value, an item, a grid) is not retried. The products are those of
``clearcube run``: the same folder, checksums and audit trail.

Task results stay in memory (no result persistence, no cache: a task's inputs are the run's
live state), and the tasks run one after another in the flow's thread, each computing with the
run's dask scheduler (``scheduler``, e.g. a ``distributed`` cluster's address).

Example::

    from clearcube.flows import clearcube_run

    result = clearcube_run("default", out="run")
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from .job import Job, RunResult, started
from .runconfig import RunConfig

if TYPE_CHECKING:
    from .catalog import Found
    from .decide import Decisions
    from .plan import Planned
    from .products.writers import Written
    from .read import ReadResult
    from .screen import Screened

__all__ = ["IO_RETRIES", "clearcube_run"]

#: How often an I/O stage is retried, and after how many seconds each time.
IO_RETRIES = (2, [2.0, 10.0])


def _io_error(_task: Any, _run: Any, state: Any) -> bool:
    """Retry a stage on I/O errors only (a server, a connection, a file); an error in the
    inputs fails at once."""
    exc = getattr(state, "data", None)
    if not isinstance(exc, BaseException):
        exc = state.result(raise_on_failure=False)
    return isinstance(exc, OSError)


def _stage(name: str, *, io: bool) -> Any:
    """The Prefect task decorator of one stage."""
    retries, delays = IO_RETRIES if io else (0, [0.0])
    return task(
        name=name,
        retries=retries,
        retry_delay_seconds=delays,
        retry_condition_fn=_io_error if io else None,
        cache_policy=NO_CACHE,
        persist_result=False,
        log_prints=False,
    )


def _search(job: Job) -> Found:
    return job.search()


def _plan(job: Job, found: Found) -> Planned:
    return job.plan(found)


def _screen(job: Job, planned: Planned) -> Screened:
    return job.screen(planned)


def _decide(job: Job, planned: Planned, screened: Screened) -> Decisions:
    return job.decide(planned, screened)


def _read(
    job: Job, planned: Planned, screened: Screened, decisions: Decisions
) -> tuple[ReadResult, Decisions]:
    return job.read(planned, screened, decisions)


def _products(
    job: Job,
    found: Found,
    planned: Planned,
    screened: Screened,
    decisions: Decisions,
    got: ReadResult,
) -> Written:
    return job.products(found, planned, screened, decisions, got)


def _audit(job: Job) -> str:
    return job.audit()


# the stages as tasks (applied as calls: the decorators are typed only where Prefect is)
search = _stage("search", io=True)(_search)
plan = _stage("plan", io=True)(_plan)
screen = _stage("screen", io=True)(_screen)
decide = _stage("decide", io=False)(_decide)
read = _stage("read", io=True)(_read)
products = _stage("products", io=False)(_products)
audit = _stage("audit", io=False)(_audit)


def _clearcube_run(
    config: RunConfig | str | Path | None = None,
    out: str | Path | None = None,
    overwrite: bool = False,
    scheduler: str | None = None,
    signing_key: str | Path | None = None,
) -> RunResult:
    """Run the main job as a flow of its stages; arguments and result as
    :func:`clearcube.run` (``config``: a run config, a TOML file or a packaged config's
    name; default the packaged default job)."""
    with started(
        config, out=out, overwrite=overwrite, scheduler=scheduler, signing_key=signing_key
    ) as job:
        if job.reused is None:
            found = search(job)
            planned = plan(job, found)
            screened = screen(job, planned)
            decisions = decide(job, planned, screened)
            got, decisions = read(job, planned, screened, decisions)
            products(job, found, planned, screened, decisions, got)
            audit(job)
    return job.result()


#: The main job as a Prefect flow (see the module's description).
clearcube_run: Any = flow(
    name="clearcube-run", persist_result=False, validate_parameters=False, log_prints=False
)(_clearcube_run)
