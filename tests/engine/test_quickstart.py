"""The spec's quick-start cascade, as written, on the engine."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from cascadence import CascadeConfig, CascadeEngine, ExecutionContext, PlanError

QUICKSTART = Path(__file__).parents[2] / "examples" / "quickstart" / "cascade.yaml"


async def fast_check_handler(context: ExecutionContext) -> dict:
    """Fast heuristic check (spec handler)."""
    user_id = context.get("user_id")
    confidence = 0.75 if user_id.startswith("trusted_") else 0.4
    if user_id.startswith("vip_"):
        confidence = 0.97
    elif user_id.startswith("mid_"):
        confidence = 0.85
    return {
        "result": "pass" if confidence > 0.5 else "review",
        "confidence": confidence,
        "data": {"method": "heuristic", "checks": ["basic_validation"]},
    }


def engine_with(medium_confidence: float = 0.85) -> CascadeEngine:
    """The quick-start engine with spec-shaped handlers that return at once."""
    config = CascadeConfig.from_file(QUICKSTART)
    engine = CascadeEngine(config)

    async def medium(_ctx: ExecutionContext) -> dict:
        await asyncio.sleep(0)
        return {"result": "pass", "confidence": medium_confidence, "data": {"method": "ml_model"}}

    async def expensive(_ctx: ExecutionContext) -> dict:
        return {"result": "pass", "confidence": 0.99, "data": {"checks_run": 47}}

    engine.register_stage("FAST_CHECK", fast_check_handler)
    engine.register_stage("MEDIUM_CHECK", medium)
    engine.register_stage("EXPENSIVE_CHECK", expensive)
    return engine


async def test_low_confidence_escalates_through_every_stage() -> None:
    """FAST at 0.4 enables MEDIUM; MEDIUM at 0.85 (< 0.9) enables EXPENSIVE."""
    result = await engine_with().execute(
        {"user_id": "user_12345", "action": "withdraw", "amount": 10000}
    )
    assert result["success"] is True
    assert result["path"] == ["FAST_CHECK", "MEDIUM_CHECK", "EXPENSIVE_CHECK"]
    assert result["stages_executed"] == 3
    fast = result["stage_results"]["FAST_CHECK"]
    assert fast["result"] == "review"
    assert fast["confidence"] == 0.4
    assert fast["time_ms"] >= 0
    assert result["cost"] == 31
    rules = [d["rule"] for d in result["routing_decisions"]]
    assert rules == ["low_confidence_escalate", "still_uncertain"]
    # the stages the run went on from are marked; the deciding stage is not
    marks = {name: sr.get("escalated") for name, sr in result["stage_results"].items()}
    assert marks == {"FAST_CHECK": True, "MEDIUM_CHECK": True, "EXPENSIVE_CHECK": None}


async def test_confident_medium_stops_before_expensive() -> None:
    """MEDIUM at 0.95 matches no rule, so EXPENSIVE stays disabled: two stages run."""
    result = await engine_with(medium_confidence=0.95).execute({"user_id": "user_1"})
    assert result["path"] == ["FAST_CHECK", "MEDIUM_CHECK"]
    assert result["final_result"] == "pass"
    assert result["cost"] == 6
    assert result["stage_results"]["FAST_CHECK"]["escalated"] is True
    assert "escalated" not in result["stage_results"]["MEDIUM_CHECK"]


async def test_high_confidence_terminates_after_the_first_stage() -> None:
    """FAST at 0.97 terminates the cascade by rule high_confidence_terminate."""
    result = await engine_with().execute({"user_id": "vip_bob"})
    assert result["path"] == ["FAST_CHECK"]
    assert result["terminated"] is True
    assert result["terminated_by"] == "high_confidence_terminate"
    assert result["cost"] == 1
    assert result["stage_results"]["FAST_CHECK"].escalated is None  # it decided


async def test_middle_confidence_runs_only_fast_check() -> None:
    """FAST at 0.85 matches neither rule: MEDIUM stays disabled."""
    result = await engine_with().execute({"user_id": "mid_alice"})
    assert result["path"] == ["FAST_CHECK"]
    assert result["terminated"] is False


async def test_handlers_from_import_paths_run_without_registration() -> None:
    """The example's YAML names its handlers by import path; the engine imports them."""
    import os

    os.environ["QUICKSTART_FAST"] = "1"
    engine = CascadeEngine(CascadeConfig.from_file(QUICKSTART))
    result = await engine.execute({"user_id": "user_1"})
    assert result["success"]
    assert result["stage_results"]["MEDIUM_CHECK"]["data"]["model"] == "trust_v2"


async def test_statistics_accumulate_and_cache_clears() -> None:
    """get_statistics counts executions and time per stage."""
    engine = engine_with()
    for _ in range(3):
        await engine.execute({"user_id": "mid_x"})
    stats = engine.get_statistics()
    assert stats["FAST_CHECK"]["count"] == 3
    assert stats["FAST_CHECK"]["errors"] == 0
    assert stats["FAST_CHECK"]["total_time_ms"] >= 0
    assert "MEDIUM_CHECK" not in stats
    engine.clear_cache()


def test_register_unknown_stage_suggests_closest() -> None:
    """Registering a handler for a misspelt stage names the closest stage."""
    engine = CascadeEngine(CascadeConfig.from_file(QUICKSTART))
    with pytest.raises(PlanError, match="did you mean 'FAST_CHECK'"):
        engine.register_stage("FAST_CHEK", fast_check_handler)


async def test_missing_handler_fails_its_stage_and_check_handlers_refuses_up_front() -> None:
    """A stage with no handler fails when it has to run, after the stages before it, with a
    clear message; check_handlers() refuses the cascade before anything runs."""
    config = CascadeConfig.from_dict(
        {"name": "c", "stages": {"A": {}, "B": {}}, "execution_order": ["A", "B"]}
    )
    engine = CascadeEngine(config)
    ran = []

    async def a(_ctx: ExecutionContext) -> dict:
        ran.append("A")
        return {"result": 1}

    engine.register_stage("A", a)
    with pytest.raises(PlanError, match="no handler for stage\\(s\\) B"):
        engine.check_handlers()
    result = await engine.execute({})
    assert ran == ["A"]
    assert not result["success"]
    assert result["stage_results"]["A"]["result"] == 1
    assert "engine.register_stage('B', handler)" in result["stage_results"]["B"]["error"]


def test_execute_sync() -> None:
    """execute_sync runs a cascade from synchronous code."""
    result = engine_with().execute_sync({"user_id": "trusted_1"})
    assert result["success"]


def _version(folder: Path, verdict: str) -> Path:
    """A cascade version in its own folder, its handlers next to it: `vstages` (which imports
    its sibling `vhelpers`, as handler modules do)."""
    folder.mkdir()
    (folder / "vhelpers.py").write_text(f"VERDICT = {verdict!r}\n")
    (folder / "vstages.py").write_text(
        "import vhelpers\n\ndef decide(ctx):\n    return {'result': vhelpers.VERDICT}\n"
    )
    path = folder / "cascade.yaml"
    path.write_text("name: versions\nstages:\n  A:\n    handler: vstages:decide\n")
    return path


async def test_each_cascade_file_imports_the_handlers_kept_next_to_it(tmp_path: Path) -> None:
    """Two versions of a cascade, each folder with handler modules of the same names, run
    their own handlers in one process (as a replay of one against the other does); what
    `import` gives the rest of the process stays the module imported first."""
    import sys

    from cascadence.replay import replay

    one, two = _version(tmp_path / "v1", "approve"), _version(tmp_path / "v2", "reject")
    try:
        first = CascadeEngine(CascadeConfig.from_file(one))
        second = CascadeEngine(CascadeConfig.from_file(two))
        assert (await first.execute({}))["final_result"] == "approve"
        assert (await second.execute({}))["final_result"] == "reject"
        assert sys.modules["vstages"].__file__ == str((tmp_path / "v1" / "vstages.py").resolve())
        assert sys.modules["vhelpers"].VERDICT == "approve"
        report = await replay(one, [{"id": 1}, {"id": 2}], candidate=two)
        assert report.agreement == 0.0
    finally:
        for name in ("vstages", "vhelpers"):
            sys.modules.pop(name, None)


async def test_the_cascade_folder_comes_before_the_working_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A module of the same name in the working folder does not replace the one next to
    the cascade file."""
    import sys

    path = _version(tmp_path / "conf", "from the cascade folder")
    (tmp_path / "vstages.py").write_text("def decide(ctx):\n    return {'result': 'cwd'}\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        engine = CascadeEngine(CascadeConfig.from_file(path))
        assert (await engine.execute({}))["final_result"] == "from the cascade folder"
    finally:
        for name in ("vstages", "vhelpers"):
            sys.modules.pop(name, None)


def test_a_handler_module_that_exits_at_import_is_a_plan_error(tmp_path: Path) -> None:
    """`sys.exit()` while a handler module imports is reported like any import failure."""
    (tmp_path / "exits_at_import.py").write_text("import sys\nsys.exit(3)\n")
    path = tmp_path / "c.yaml"
    path.write_text("name: c\nstages:\n  A:\n    handler: exits_at_import:f\n")
    with pytest.raises(PlanError, match="importing 'exits_at_import' raised SystemExit: 3"):
        CascadeEngine(CascadeConfig.from_file(path))


def _cascade(folder: Path, handlers: dict[str, str], files: dict[str, str]) -> Path:
    """A cascade file in `folder` with stages named by `handlers`, and the module files."""
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    stages = "".join(f"  {stage}:\n    handler: {path}\n" for stage, path in handlers.items())
    path = folder / "cascade.yaml"
    path.write_text(f"name: layouts\nstages:\n{stages}")
    return path


@pytest.fixture
def clean_modules() -> Any:
    """Forget the modules a test imported from its temporary folders."""
    import sys

    before = set(sys.modules)
    yield
    for name in set(sys.modules) - before:
        del sys.modules[name]


async def test_handler_layouts_that_share_module_names(
    tmp_path: Path, clean_modules: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A namespace folder of handlers; a version kept in a subfolder of another; two cascades
    whose stage modules differ but whose helper modules share a name; two stages of one
    module, imported once, sharing its state."""
    monkeypatch.chdir(tmp_path.parent)  # the cascade folders are never the working folder
    # a folder of handlers without __init__.py
    ns = tmp_path / "ns"
    path = _cascade(
        ns,
        {"A": "handlers.fraud:decide"},
        {"handlers/fraud.py": "def decide(ctx):\n    return {'result': 'ns'}\n"},
    )
    assert (await CascadeEngine(CascadeConfig.from_file(path)).execute({}))["final_result"] == "ns"

    # a version in a subfolder of the other, each with its own `lstages`
    stages = "def decide(ctx):\n    return {'result': %r}\n"
    root = tmp_path / "root"
    outer = _cascade(root, {"A": "lstages:decide"}, {"lstages.py": stages % "outer"})
    inner = _cascade(root / "candidate", {"A": "lstages:decide"}, {"lstages.py": stages % "inner"})
    first = CascadeEngine(CascadeConfig.from_file(inner))
    second = CascadeEngine(CascadeConfig.from_file(outer))
    assert (await first.execute({}))["final_result"] == "inner"
    assert (await second.execute({}))["final_result"] == "outer"

    # different stage modules importing their own `lhelpers`
    uses = "import lhelpers\n\ndef decide(ctx):\n    return {'result': lhelpers.WHO}\n"
    fraud = _cascade(
        tmp_path / "fraud",
        {"A": "fraud_stages:decide"},
        {"fraud_stages.py": uses, "lhelpers.py": "WHO = 'fraud'\n"},
    )
    kyc = _cascade(
        tmp_path / "kyc",
        {"A": "kyc_stages:decide"},
        {"kyc_stages.py": uses, "lhelpers.py": "WHO = 'kyc'\n"},
    )
    assert (await CascadeEngine(CascadeConfig.from_file(fraud)).execute({}))[
        "final_result"
    ] == "fraud"
    assert (await CascadeEngine(CascadeConfig.from_file(kyc)).execute({}))["final_result"] == "kyc"

    # one module for two stages, after a module of its name came from elsewhere
    counted = (
        "import builtins\n"
        "builtins.LOADS = getattr(builtins, 'LOADS', 0) + 1\n"
        "CALLS = []\n\n"
        "def a(ctx):\n    CALLS.append('a')\n    return {'result': len(CALLS)}\n\n"
        "def b(ctx):\n    CALLS.append('b')\n    return {'result': len(CALLS)}\n"
    )
    _cascade(tmp_path / "old", {"A": "sstages:a"}, {"sstages.py": counted})
    import builtins

    CascadeEngine(CascadeConfig.from_file(tmp_path / "old" / "cascade.yaml"))
    loads = builtins.LOADS  # type: ignore[attr-defined]
    new = _cascade(tmp_path / "new", {"A": "sstages:a", "B": "sstages:b"}, {"sstages.py": counted})
    engine = CascadeEngine(CascadeConfig.from_file(new))
    CascadeEngine(CascadeConfig.from_file(new))  # a second engine on the same file
    assert loads + 1 == builtins.LOADS  # type: ignore[attr-defined]
    assert (await engine.execute({}))["stage_results"]["B"]["result"] == 2  # state shared
    del builtins.LOADS  # type: ignore[attr-defined]


async def test_a_reload_to_another_folder_takes_that_folders_handlers(
    tmp_path: Path, clean_modules: Any
) -> None:
    """`update_config` to the next version's file, whose handler path reads the same but is
    kept next to that file, runs the new version's handler."""
    one, two = _version(tmp_path / "v1", "approve"), _version(tmp_path / "v2", "reject")
    engine = CascadeEngine(CascadeConfig.from_file(one))
    assert (await engine.execute({}))["final_result"] == "approve"
    engine.update_config(CascadeConfig.from_file(two))
    assert (await engine.execute({}))["final_result"] == "reject"
    engine.update_config(one)
    assert (await engine.execute({}))["final_result"] == "approve"


def test_handler_problems_name_the_cascade_file_and_stage(tmp_path: Path) -> None:
    """From Python as from the CLI: a handler path that does not import, or a handler that
    cannot take the context, names the file and the stage's `handler` key."""
    (tmp_path / "sig_handlers.py").write_text(
        "def none():\n    return 1\n\ndef ok(ctx):\n    return 1\n"
    )
    for handler, message in (
        ("sig_handlers:nope", "did you mean 'none'?"),
        ("sig_handlers:none", "cannot be called with the stage's context: none()"),
    ):
        path = tmp_path / "c.yaml"
        path.write_text(f"name: c\nstages:\n  A:\n    handler: {handler}\n")
        with pytest.raises(PlanError) as info:
            CascadeEngine(CascadeConfig.from_file(path))
        assert str(info.value).startswith(f"{path}: stages.A.handler: ")
        assert message in str(info.value)
    engine = CascadeEngine({"name": "c", "stages": {"A": {}}})
    with pytest.raises(PlanError, match="takes one argument, the ExecutionContext"):
        engine.register_stage("A", lambda: {"result": 1})


def test_engines_built_in_threads_each_get_their_folders_handlers(
    tmp_path: Path, clean_modules: Any
) -> None:
    """Engines built at once in threads, on one file whose handler module is slow to import
    and on two versions' files, each get complete handlers of their own folder."""
    import threading

    slow = "import time\ntime.sleep(0.2)\n\ndef decide(ctx):\n    return {'result': %r}\n"
    same = _cascade(tmp_path / "same", {"A": "tslow:decide"}, {"tslow.py": slow % "same"})
    one = _cascade(tmp_path / "one", {"A": "tver:decide"}, {"tver.py": slow % "one"})
    two = _cascade(tmp_path / "two", {"A": "tver:decide"}, {"tver.py": slow % "two"})
    paths = [same, same, same, one, two, one, two]
    results: dict[int, object] = {}

    def build(index: int) -> None:
        try:
            engine = CascadeEngine(CascadeConfig.from_file(paths[index]))
            results[index] = engine.execute_sync({})["final_result"]
        except Exception as exc:  # reported below
            results[index] = exc

    threads = [threading.Thread(target=build, args=(i,)) for i in range(len(paths))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [results[i] for i in range(len(paths))] == [
        "same",
        "same",
        "same",
        "one",
        "two",
        "one",
        "two",
    ]


async def test_a_folder_module_named_like_the_standard_library_stays_the_folders(
    tmp_path: Path, clean_modules: Any
) -> None:
    """A handler folder's `tabnanny.py` serves its handlers; the rest of the process still
    imports the standard library's `tabnanny`."""
    import importlib
    import sys

    if "tabnanny" in sys.modules:
        pytest.skip("the standard library's tabnanny is already imported here")
    path = _cascade(
        tmp_path / "shadow",
        {"A": "shadow_stages:decide"},
        {
            "tabnanny.py": "WHO = 'the folder'\n",
            "shadow_stages.py": (
                "import tabnanny\n\ndef decide(ctx):\n    return {'result': tabnanny.WHO}\n"
            ),
        },
    )
    engine = CascadeEngine(CascadeConfig.from_file(path))
    assert (await engine.execute({}))["final_result"] == "the folder"
    assert hasattr(importlib.import_module("tabnanny"), "check")  # the standard library's


async def test_a_handler_module_named_like_a_loaded_standard_module_is_the_folders(
    tmp_path: Path, clean_modules: Any
) -> None:
    """`handler: "queue:decide"` next to a `queue.py` is that file's, though the standard
    library's `queue` is imported already; it stays imported for everyone else."""
    import queue
    import sys

    path = _cascade(
        tmp_path / "q",
        {"A": "queue:decide"},
        {"queue.py": "def decide(ctx):\n    return {'result': 'the folder queue'}\n"},
    )
    engine = CascadeEngine(CascadeConfig.from_file(path))
    assert (await engine.execute({}))["final_result"] == "the folder queue"
    assert sys.modules["queue"] is queue
