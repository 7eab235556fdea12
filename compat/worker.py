"""Run one CPython asyncio test module against one loop, streaming results.

Role: the child process (``python -m compat.worker``) of the supervisor.  It
installs the running-loop hooks, loads and injects the loop under test,
checks the injection, imports the test module from the interpreter's own
``test.test_asyncio`` package, and runs it with a unittest result object that
appends one JSON line per event to ``--out`` and flushes it at once.

Invariant owned here: every test that started has a ``start`` line on disk
before its code runs, and every test that finished has a ``result`` line, so
a supervisor that kills or loses this process knows exactly which test hung
or crashed and which tests are still to run.  Exit code 3 means the
injection check failed; no test was run in that case.
"""

from __future__ import annotations

import argparse
import faulthandler
import json
import os
import re
import resource
import signal
import sys
import time
import traceback
import unittest
from collections.abc import Iterator
from typing import IO, Any

from compat import tiers, tracking

EXIT_INJECTION_FAILED = 3
PREFIX = f"{tiers.TEST_PACKAGE}."
DETAIL_CHARS = 2000
_HOLDER_RE = re.compile(r"^(\w+) \((.+)\)$")


def short_id(raw: str, prefix: str = PREFIX) -> str:
    """``test.test_asyncio.mod.Cls.test`` -> ``mod.Cls.test``.

    Class and module fixture failures arrive as ``setUpClass (pkg.mod.Cls)``;
    they become ``mod.Cls.setUpClass`` so they sort next to their tests.
    """
    match = _HOLDER_RE.match(raw)
    if match:
        raw = f"{match.group(2)}.{match.group(1)}"
    return raw[len(prefix) :] if raw.startswith(prefix) else raw


def _tail(text: str, limit: int = DETAIL_CHARS) -> str:
    return text if len(text) <= limit else "...\n" + text[-limit:]


class Stream:
    """Append-only JSON-lines event log, flushed per event."""

    def __init__(self, handle: IO[str]) -> None:
        self._handle = handle

    def emit(self, event: str, **fields: Any) -> None:
        fields["event"] = event
        self._handle.write(json.dumps(fields, sort_keys=True) + "\n")
        self._handle.flush()


class StreamingResult(unittest.TestResult):
    """unittest result that records outcome and loop evidence per test."""

    def __init__(self, stream: Stream, owns: Any, test_timeout: float, log: IO[str], prefix: str = PREFIX) -> None:
        super().__init__()
        self._prefix = prefix
        self._stream = stream
        self._owns = owns
        self._test_timeout = test_timeout
        self._log = log
        self._current: dict[str, Any] = {}
        self._started = 0.0

    def startTest(self, test: unittest.TestCase) -> None:
        super().startTest(test)
        tracking.TRACKER.reset()
        self._current = {"outcome": None, "detail": "", "sub_failed": False}
        self._started = time.monotonic()
        if self._test_timeout > 2:
            # Leaves a traceback of every thread in the log just before the
            # supervisor kills a hung test.
            faulthandler.dump_traceback_later(self._test_timeout - 1.5, file=self._log)
        self._stream.emit("start", id=short_id(test.id(), self._prefix))

    def stopTest(self, test: unittest.TestCase) -> None:
        faulthandler.cancel_dump_traceback_later()
        super().stopTest(test)
        self._finish(test)

    def _finish(self, test: Any) -> None:
        current = self._current
        outcome = current["outcome"]
        if outcome is None:
            outcome = "failed" if current["sub_failed"] else "error"
            if not current["sub_failed"]:
                current["detail"] = "unittest reported no outcome"
        announced, seen = tracking.TRACKER.snapshot()
        ran = announced | seen
        if any(self._owns(cls) for cls in ran):
            exercised = "loop-under-test"
        elif ran:
            exercised = "other-loop"
        else:
            exercised = "no-loop"
        self._stream.emit(
            "result",
            id=short_id(test.id(), self._prefix),
            outcome=outcome,
            exercised=exercised,
            loops=sorted(tracking.type_name(cls) for cls in ran),
            duration=round(time.monotonic() - self._started, 3),
            detail=_tail(current["detail"]),
        )

    def _set(self, outcome: str, detail: str = "") -> None:
        # A test can fail, then error in tearDown: keep the first verdict,
        # it is the cause; append every detail.
        if self._current.get("outcome") in (None, "passed"):
            self._current["outcome"] = outcome
        if detail:
            joined = (self._current.get("detail", "") + "\n" + detail).strip()
            self._current["detail"] = joined

    def _format(self, err: Any, test: Any) -> str:
        # unittest's private formatter drops unittest's own frames, as the
        # stock runner's output does.
        formatter = getattr(self, "_exc_info_to_string", None)
        if formatter is None:
            return "".join(traceback.format_exception(*err))
        return str(formatter(err, test))

    def _fixture(self, test: Any, outcome: str, err: Any) -> bool:
        """Errors of setUpClass/setUpModule arrive with no startTest."""
        if isinstance(test, unittest.TestCase):
            return False
        self._stream.emit("start", id=short_id(str(test), self._prefix))
        self._stream.emit(
            "result",
            id=short_id(str(test), self._prefix),
            outcome=outcome,
            exercised="no-loop",
            loops=[],
            duration=0.0,
            detail=_tail(self._format(err, test)),
        )
        return True

    def addSuccess(self, test: unittest.TestCase) -> None:
        super().addSuccess(test)
        self._set("passed")

    def addFailure(self, test: Any, err: Any) -> None:
        super().addFailure(test, err)
        if not self._fixture(test, "failed", err):
            self._set("failed", self._format(err, test))

    def addError(self, test: Any, err: Any) -> None:
        super().addError(test, err)
        if not self._fixture(test, "error", err):
            self._set("error", self._format(err, test))

    def addSkip(self, test: Any, reason: str) -> None:
        super().addSkip(test, reason)
        if hasattr(test, "test_case"):
            # A skipped subtest says nothing about its parent test's verdict.
            return
        if isinstance(test, unittest.TestCase):
            self._set("skipped", reason)
        else:
            self._stream.emit("start", id=short_id(str(test), self._prefix))
            self._stream.emit(
                "result",
                id=short_id(str(test), self._prefix),
                outcome="skipped",
                exercised="no-loop",
                loops=[],
                duration=0.0,
                detail=reason,
            )

    def addExpectedFailure(self, test: Any, err: Any) -> None:
        super().addExpectedFailure(test, err)
        self._set("expected-failure")

    def addUnexpectedSuccess(self, test: Any) -> None:
        super().addUnexpectedSuccess(test)
        self._set("unexpected-success")

    def addSubTest(self, test: Any, subtest: Any, err: Any) -> None:
        super().addSubTest(test, subtest, err)
        if err is not None:
            self._current["sub_failed"] = True
            kind = "failed" if issubclass(err[0], test.failureException) else "error"
            self._set(kind, f"[{subtest._subDescription()}]\n" + self._format(err, test))


def _flatten(suite: unittest.TestSuite | unittest.TestCase) -> Iterator[Any]:
    if isinstance(suite, unittest.TestSuite):
        for item in suite:
            yield from _flatten(item)
    else:
        yield suite


def _select(
    suite: unittest.TestSuite, drop: set[str], module_name: str, skip: set[str], prefix: str
) -> unittest.TestSuite:
    kept = []
    for test in _flatten(suite):
        cls = type(test)
        if cls.__module__ == module_name and cls.__name__ in drop:
            continue
        if short_id(test.id(), prefix) in skip:
            continue
        kept.append(test)
    return unittest.TestSuite(kept)


def run(args: argparse.Namespace) -> int:
    from compat import inject

    out = open(args.out, "a", encoding="utf-8")  # noqa: SIM115 - lives as long as the process
    stream = Stream(out)
    log = sys.stderr
    faulthandler.enable(file=log, all_threads=True)
    if args.memory_limit > 0:
        # A runaway test must fail with MemoryError here, not push a shared
        # CI machine into the OOM killer.
        limit = args.memory_limit * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    # A runner started in the background by a shell inherits SIGINT ignored;
    # asyncio.Runner then installs no handler and the KeyboardInterrupt tests
    # of test_runners spin forever.  Tests expect Python's default handler.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    tracking.TRACKER.install()
    try:
        lut = inject.load_loop(args.loop)
        inject.apply_shims(lut)
        check = inject.check_injection(lut)
    except inject.InjectionError as exc:
        stream.emit("injection-failed", detail=str(exc), loop=args.loop)
        print(f"compat: INJECTION CHECK FAILED for {args.loop!r}: {exc}", file=log, flush=True)
        return EXIT_INJECTION_FAILED
    stream.emit(
        "injected",
        loop=args.loop,
        loop_type=tracking.type_name(lut.loop_type),
        structure="stock" if lut.stock else "loop-under-test",
        check=check,
        shims=lut.shims,
        pid=os.getpid(),
        python=sys.version.split()[0],
    )
    try:
        module = inject.import_test_module(args.package, args.module)
    except unittest.SkipTest as exc:
        stream.emit("module-skipped", detail=str(exc))
        stream.emit("done")
        return 0
    except Exception:
        stream.emit("import-error", detail=_tail(traceback.format_exc()))
        return 1
    try:
        info = inject.rewrite_module(module, args.module, lut)
    except inject.InjectionError as exc:
        stream.emit("injection-failed", detail=str(exc), loop=args.loop)
        print(f"compat: INJECTION FAILED for {args.module}: {exc}", file=log, flush=True)
        return EXIT_INJECTION_FAILED
    skip: set[str] = set()
    if args.skip_file:
        with open(args.skip_file, encoding="utf-8") as handle:
            skip = {line.strip() for line in handle if line.strip()}
    loader = unittest.TestLoader()
    prefix = f"{args.package}."
    suite = _select(loader.loadTestsFromModule(module), set(info["drop"]), module.__name__, skip, prefix)
    stream.emit(
        "plan",
        tests=[short_id(t.id(), prefix) for t in _flatten(suite)],
        dropped=info["drop"],
        added=info["added"],
        reference=info["reference"],
    )
    result = StreamingResult(stream, lut.owns, args.test_timeout, log, prefix)
    suite.run(result)
    stream.emit("done")
    out.close()
    return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m compat.worker")
    parser.add_argument("--loop", required=True)
    parser.add_argument("--module", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--skip-file")
    # Only the runner's own unit tests point this elsewhere.
    parser.add_argument("--package", default=tiers.TEST_PACKAGE)
    parser.add_argument("--test-timeout", type=float, default=0.0)
    parser.add_argument("--memory-limit", type=int, default=0, help="MiB of address space")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    return run(parse_args(argv))


if __name__ == "__main__":
    # os._exit: lingering non-daemon threads left by a broken test must not
    # keep a finished worker alive until the supervisor's timeout.
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
