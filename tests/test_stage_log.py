"""The stage log's timings (grader.pipeline.stages.StageLog): what a submission's stages took, with
the grader's own waiting set apart from the submission's time."""

from grader.pipeline.stages import LOAD, SANDBOX_START, SPEC, StageLog


def _log(**timings: float) -> StageLog:
    log = StageLog()
    log.timings = dict(timings)
    return log


def test_time_set_apart_is_taken_from_the_stage_and_recorded_just_before_it():
    log = _log(spec=0.01, load=7.5, checks=0.2)
    log.set_apart(LOAD, SANDBOX_START, 6.25)
    assert list(log.timings.items()) == [("spec", 0.01), ("sandbox_start", 6.25), ("load", 1.25), ("checks", 0.2)]


def test_no_more_than_the_stage_took_is_set_apart():
    log = _log(load=1.5)
    log.set_apart(LOAD, SANDBOX_START, 2.0)
    assert log.timings == {"sandbox_start": 1.5, "load": 0.0}


def test_a_stage_that_did_not_run_has_nothing_set_apart():
    log = _log(spec=0.01)
    log.set_apart(LOAD, SANDBOX_START, 3.0)
    assert log.timings == {"spec": 0.01}


def test_a_stage_timed_by_the_log_keeps_its_name_and_order():
    log = StageLog()
    with log.stage(SPEC):
        pass
    with log.stage(LOAD):
        pass
    log.set_apart(LOAD, SANDBOX_START, 0.0)
    assert list(log.timings) == ["spec", "sandbox_start", "load"]
