"""The console's FastAPI application: HTML pages for people, the same data as JSON under `/api`.

Pages: `/` (overview), `/cascades/{name}`, `/flows/{name}`, `/runs`, `/runs/{run_id}`,
`/proposals`, `/proposals/{id}`; a proposal page has a form per allowed action (approve,
reject, start testing, activate, deprecate). The JSON API mirrors them: `GET /api/cascades`,
`/api/flows`, `/api/runs`, `/api/proposals` (and one item by name or id), and
`POST /api/proposals/{id}/{action}` with a JSON body `{"reviewer": ..., "reason": ...}`.

Writes are protected against cross-site requests: a form carries a token the page was rendered
with, and the API accepts only `application/json` bodies (which a browser sends cross-site only
after a CORS preflight this app never answers). Who the reviewer is comes from the form, or,
when the console sits behind a login, from `reviewer(request)` (for example a header the
proxy sets); returning None refuses the change with 403.
"""

from __future__ import annotations

import datetime
import json
import secrets
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import parse_qs, quote

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from cascadence.checkpoint.base import CheckpointStore, RunStatus
from cascadence.console.catalog import Catalog, UnknownEntryError
from cascadence.console.records import ACTIONS, proposal_data, run_data
from cascadence.errors import closest
from cascadence.learning.models import ProposalError, ProposalNotFoundError, ProposalStatus
from cascadence.learning.proposals import ProposalManager

__all__ = ["MERMAID_URL", "create_console"]

MERMAID_URL = "https://cdn.jsdelivr.net/npm/mermaid@11/dist/mermaid.esm.min.mjs"
"""Where pages load Mermaid from to draw diagrams; without it the diagram source is shown."""

Reviewer = Callable[[Request], "str | None"]

_MAX_LIMIT = 1000


class _Problem(Exception):
    """A request the console answers with an error status and a message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _when(value: float | None) -> str:
    if value is None:
        return ""
    moment = datetime.datetime.fromtimestamp(value, tz=datetime.timezone.utc)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False)


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("cascadence.console", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = _when
    env.filters["pretty"] = _pretty
    env.filters["percent"] = _percent
    env.filters["urlpart"] = lambda text: quote(str(text), safe="")
    return env


def _open_store(runs: CheckpointStore | str | None) -> CheckpointStore | None:
    if runs is None or not isinstance(runs, str):
        return runs
    from cascadence.checkpoint import store_from_url

    return store_from_url(runs)


def _open_proposals(proposals: ProposalManager | Any) -> ProposalManager | None:
    if proposals is None or isinstance(proposals, ProposalManager):
        return proposals
    return ProposalManager(proposals)  # a store, a URL or a path


def _status_filter(value: str | None, allowed: Iterable[str], what: str) -> str | None:
    if not value:
        return None
    names = list(allowed)
    by_case = {name.lower(): name for name in names}
    if value.lower() in by_case:
        return by_case[value.lower()]
    hint = closest(value.lower(), list(by_case))
    raise _Problem(
        400,
        f"unknown {what} status {value!r}; expected one of {', '.join(names)}"
        + (f"; did you mean {by_case[hint]!r}?" if hint else ""),
    )


def _limit(value: str | None) -> int:
    if value is None or value == "":
        return 100
    try:
        number = int(value)
    except ValueError:
        raise _Problem(400, f"limit must be a whole number, got {value!r}") from None
    if not 1 <= number <= _MAX_LIMIT:
        raise _Problem(400, f"limit must be between 1 and {_MAX_LIMIT}, got {number}")
    return number


def create_console(
    targets: Iterable[Any] | Mapping[str, Any] = (),
    *,
    runs: CheckpointStore | str | None = None,
    proposals: ProposalManager | Any = None,
    reviewer: Reviewer | None = None,
    title: str = "cascadence console",
    mermaid_url: str | None = MERMAID_URL,
) -> FastAPI:
    """Build the console app.

    Args:
        targets: Cascades (a `CascadeEngine`, `CascadeConfig` or cascade file path) and flows
            (`Cadence`) to show; a mapping lists each under its key instead of its own name.
        runs: The checkpoint store whose runs to show (a store or a URL such as
            `sqlite:///runs.db`); the runs pages say how to set it when it is None.
        proposals: APLS proposals to review: a `ProposalManager`, a proposal store, or its
            URL/path (`sqlite:///proposals.db`, `postgresql://...`).
        reviewer: Who is making a change, from the request (None refuses it with 403); when
            not given, the name typed into the form (or the JSON body's `reviewer`) is used.
        title: Shown in the page header.
        mermaid_url: The Mermaid module pages load to draw diagrams; None shows only the
            diagram source (for machines with no internet access, or a strict policy).

    Returns:
        A FastAPI application; serve it with uvicorn (`cascadence console` does).

    Raises:
        ConfigError: A cascade file does not load.
        ValueError: Two targets share a name, or a store URL is not understood.
    """
    catalog = Catalog(targets)
    store = _open_store(runs)
    manager = _open_proposals(proposals)
    token = secrets.token_urlsafe(24)
    env = _environment()
    app = FastAPI(
        title=title, docs_url="/api/docs", redoc_url=None, openapi_url="/api/openapi.json"
    )
    app.state.catalog = catalog
    app.state.store = store
    app.state.proposals = manager

    def page(name: str, code: int = 200, **values: Any) -> HTMLResponse:
        template = env.get_template(name)
        html = template.render(
            title=title,
            mermaid_url=mermaid_url,
            token=token,
            fixed_reviewer=reviewer is not None,
            has_runs=store is not None,
            has_proposals=manager is not None,
            **values,
        )
        return HTMLResponse(html, status_code=code)

    def problem_page(problem: _Problem) -> HTMLResponse:
        return page("error.html", code=problem.status, message=problem.message)

    def wants_json(request: Request) -> bool:
        return request.url.path.startswith("/api/")

    @app.exception_handler(_Problem)
    async def _on_problem(request: Request, problem: _Problem) -> Response:
        if wants_json(request):
            return JSONResponse({"detail": problem.message}, status_code=problem.status)
        return problem_page(problem)

    @app.exception_handler(UnknownEntryError)
    async def _on_unknown(request: Request, error: UnknownEntryError) -> Response:
        return await _on_problem(request, _Problem(404, str(error)))

    @app.exception_handler(ProposalNotFoundError)
    async def _on_no_proposal(request: Request, error: ProposalNotFoundError) -> Response:
        return await _on_problem(request, _Problem(404, str(error)))

    # -- data ------------------------------------------------------------------------------
    def need_store() -> CheckpointStore:
        if store is None:
            raise _Problem(
                404,
                "this console shows no runs: start it with a checkpoint store "
                "(cascadence console --runs sqlite:///runs.db, or create_console(runs=...))",
            )
        return store

    def need_proposals() -> ProposalManager:
        if manager is None:
            raise _Problem(
                404,
                "this console shows no proposals: start it with a proposal store "
                "(cascadence console --proposals sqlite:///proposals.db, or "
                "create_console(proposals=...))",
            )
        return manager

    async def list_runs(request: Request) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        chosen = need_store()
        query = request.query_params
        status = _status_filter(query.get("status"), [s.value for s in RunStatus], "run")
        name = query.get("name") or None
        limit = _limit(query.get("limit"))
        found = await chosen.list_runs(
            status=RunStatus(status) if status else None, name=name, limit=limit
        )
        filters = {"status": status, "name": name, "limit": limit}
        return [run_data(run, with_steps=False) for run in found], filters

    async def one_run(run_id: str) -> dict[str, Any]:
        record = await need_store().load(run_id)
        if record is None:
            raise _Problem(404, f"no run with id {run_id!r} in the checkpoint store")
        return run_data(record)

    def list_proposals(request: Request) -> tuple[list[dict[str, Any]], str | None]:
        chosen = need_proposals()
        status = _status_filter(
            request.query_params.get("status"), [s.value for s in ProposalStatus], "proposal"
        )
        return [proposal_data(p) for p in chosen.proposals(status)], status

    def one_proposal(proposal_id: str) -> dict[str, Any]:
        return proposal_data(need_proposals().get(proposal_id))

    def act(proposal_id: str, action: str, who: str | None, reason: str | None) -> Any:
        chosen = need_proposals()
        if action not in ACTIONS:
            hint = closest(action, ACTIONS)
            raise _Problem(
                404,
                f"unknown action {action!r}; expected one of {', '.join(ACTIONS)}"
                + (f"; did you mean {hint!r}?" if hint else ""),
            )
        who = who.strip() if isinstance(who, str) and who.strip() else None
        reason = reason.strip() if isinstance(reason, str) and reason.strip() else None
        try:
            if action == "approve":
                if who is None:
                    raise _Problem(400, "approving needs the reviewer who signs it off")
                return chosen.approve(proposal_id, who, reason)
            if action == "reject":
                return chosen.reject(proposal_id, who, reason)
            if action == "start_testing":
                return chosen.start_testing(proposal_id, who, reason)
            if action == "activate":
                return chosen.activate(proposal_id, who, reason)
            return chosen.deprecate(proposal_id, who, reason)
        except ProposalNotFoundError:
            raise
        except ProposalError as error:
            raise _Problem(409, str(error)) from None

    def identify(request: Request, typed: Any) -> str | None:
        if reviewer is None:
            return typed if isinstance(typed, str) else None
        who = reviewer(request)
        if not who:
            raise _Problem(403, "you are not allowed to review proposals here")
        return who

    # -- pages -----------------------------------------------------------------------------
    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def index() -> HTMLResponse:
        pending = None
        if manager is not None:
            pending = len(await run_in_threadpool(manager.proposals, ProposalStatus.PENDING_REVIEW))
        return page(
            "index.html",
            cascades=[catalog.describe(e) for e in catalog.entries("cascade")],
            flows=[catalog.describe(e) for e in catalog.entries("flow")],
            pending=pending,
        )

    @app.get("/cascades/{name}", response_class=HTMLResponse, include_in_schema=False)
    def cascade_page(name: str) -> HTMLResponse:
        return page("cascade.html", item=catalog.describe(catalog.get("cascade", name)))

    @app.get("/flows/{name}", response_class=HTMLResponse, include_in_schema=False)
    def flow_page(name: str) -> HTMLResponse:
        return page("flow.html", item=catalog.describe(catalog.get("flow", name)))

    @app.get("/runs", response_class=HTMLResponse, include_in_schema=False)
    async def runs_page(request: Request) -> HTMLResponse:
        found, filters = await list_runs(request)
        return page("runs.html", runs=found, filters=filters, statuses=[s.value for s in RunStatus])

    @app.get("/runs/{run_id}", response_class=HTMLResponse, include_in_schema=False)
    async def run_page(run_id: str) -> HTMLResponse:
        return page("run.html", run=await one_run(run_id))

    @app.get("/proposals", response_class=HTMLResponse, include_in_schema=False)
    def proposals_page(request: Request) -> HTMLResponse:
        found, status = list_proposals(request)
        return page(
            "proposals.html",
            proposals=found,
            status=status,
            statuses=[s.value for s in ProposalStatus],
        )

    @app.get("/proposals/{proposal_id}", response_class=HTMLResponse, include_in_schema=False)
    def proposal_page(proposal_id: str, done: str | None = None) -> HTMLResponse:
        return page("proposal.html", proposal=one_proposal(proposal_id), done=done)

    @app.post("/proposals/{proposal_id}/{action}", include_in_schema=False)
    async def proposal_form(request: Request, proposal_id: str, action: str) -> Response:
        raw = (await request.body()).decode("utf-8", "replace")
        form = {key: values[-1] for key, values in parse_qs(raw).items()}
        if not secrets.compare_digest(form.get("token", ""), token):
            raise _Problem(403, "the form is out of date or was not sent from this console")
        who = identify(request, form.get("reviewer"))
        try:
            await run_in_threadpool(act, proposal_id, action, who, form.get("reason"))
        except _Problem as problem:
            proposal = await run_in_threadpool(one_proposal, proposal_id)
            return page(
                "proposal.html", code=problem.status, proposal=proposal, error=problem.message
            )
        target = f"/proposals/{quote(proposal_id, safe='')}?done={quote(action)}"
        return RedirectResponse(target, status_code=303)

    # -- JSON API --------------------------------------------------------------------------
    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/api/cascades")
    def api_cascades() -> list[dict[str, Any]]:
        return [catalog.describe(e) for e in catalog.entries("cascade")]

    @app.get("/api/cascades/{name}")
    def api_cascade(name: str) -> dict[str, Any]:
        return catalog.describe(catalog.get("cascade", name))

    @app.get("/api/flows")
    def api_flows() -> list[dict[str, Any]]:
        return [catalog.describe(e) for e in catalog.entries("flow")]

    @app.get("/api/flows/{name}")
    def api_flow(name: str) -> dict[str, Any]:
        return catalog.describe(catalog.get("flow", name))

    @app.get("/api/runs")
    async def api_runs(request: Request) -> list[dict[str, Any]]:
        found, _ = await list_runs(request)
        return found

    @app.get("/api/runs/{run_id}")
    async def api_run(run_id: str) -> dict[str, Any]:
        return await one_run(run_id)

    @app.get("/api/proposals")
    def api_proposals(request: Request) -> list[dict[str, Any]]:
        return list_proposals(request)[0]

    @app.get("/api/proposals/{proposal_id}")
    def api_proposal(proposal_id: str) -> dict[str, Any]:
        return one_proposal(proposal_id)

    @app.post("/api/proposals/{proposal_id}/{action}")
    async def api_act(request: Request, proposal_id: str, action: str) -> dict[str, Any]:
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind != "application/json":
            raise _Problem(415, "send the body as application/json")
        try:
            body = json.loads(await request.body() or b"{}")
        except ValueError as exc:
            raise _Problem(400, f"the body is not JSON: {exc}") from None
        if not isinstance(body, dict):
            raise _Problem(400, 'the body must be a JSON object like {"reviewer": "..."}')
        unknown = sorted(set(body) - {"reviewer", "reason"})
        if unknown:
            raise _Problem(400, f"unknown field(s) {unknown}; expected 'reviewer' and 'reason'")
        who = identify(request, body.get("reviewer"))
        moved = await run_in_threadpool(act, proposal_id, action, who, body.get("reason"))
        return proposal_data(moved)

    return app
