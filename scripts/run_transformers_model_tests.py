"""Run transformers' own common model tests against `EmoForAudioClassification`.

Fetches the transformers sdist of the version in requirements.lock from the package index
(`pip download --no-deps --no-binary :all:`), takes its `tests/test_modeling_common.py`
(`ModelTesterMixin`) and `tests/test_configuration_common.py` (`ConfigTester`) into a
scratch folder, and runs them through `scripts/transformers_model_tester.py` in five
variants (last layer, weighted sum, LoRA, bottleneck, full fine-tuning). Nothing of
transformers is written into this repository.

    .venv/bin/python scripts/run_transformers_model_tests.py [--workdir DIR] [-k EXPR]

Prints passed/failed/skipped per variant and every failure with its first error line; the
exit status is 1 when a failure is not in `EXPECTED_FAILURES` (docs/conformance.md says why
each one is there).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tarfile
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TESTER = Path(__file__).resolve().parent / "transformers_model_tester.py"
COMMON_FILES = ("tests/test_modeling_common.py", "tests/test_configuration_common.py")

# The sdist ships the two common files but not three modules they import. Stand-ins, with why
# each is enough for these tests:
STAND_INS = {
    # ModelTesterMixin derives from ExportTesterMixin (torch.export tests, not in the sdist):
    # an empty base runs every ModelTesterMixin test and no export test.
    "exporters/test_export.py": "class ExportTesterMixin:\n    pass\n",
    # Used only by test_generation_tester_mixin_inheritance, which checks that a model that
    # cannot generate does not inherit it: an empty class answers that check truthfully.
    "generation/test_utils.py": "class GenerationTesterMixin:\n    pass\n",
    # ConfigTester.check_config_arguments_init returns before reading it for composite configs
    # (EmoConfig nests its backbone's): its content is never used here.
    "utils/test_configuration_utils.py": "config_common_kwargs = {}\n",
}

FROZEN = ("EmoLastLayerTest", "EmoWeightedSumTest")
ADAPTERS = ("EmoLoRATest", "EmoBottleneckTest")
NO_OP = ("by design: the backbone is frozen and has no adapter, so it runs under torch.no_grad(); "
         "there is nothing to checkpoint and no layer is recomputed")
FROZEN_ENCODER = ("by design: the feature encoder is frozen (freeze_feature_encoder, the default) and the test "
                  "unfreezes its weights by hand; under reentrant checkpointing its first conv layer's input, "
                  "the raw audio, requires no grad, so that layer is not recomputed (a stock Wav2Vec2 model "
                  "after freeze_feature_encoder() does the same)")
NO_GRAD_TO_INPUT = ("by design: hidden_states[0] (the feature projection's output) lies upstream of every weight "
                    "that trains (the backbone is frozen), so no gradient reaches it")

#: Failures by design: test name -> variant (class name) -> reason. docs/conformance.md lists them.
EXPECTED_FAILURES: dict[str, dict[str, str]] = {
    "test_training_gradient_checkpointing": dict.fromkeys(FROZEN, NO_OP),
    "test_training_gradient_checkpointing_use_reentrant_false": dict.fromkeys(FROZEN, NO_OP),
    "test_training_gradient_checkpointing_use_reentrant_true": {
        **dict.fromkeys(FROZEN, NO_OP),
        **dict.fromkeys((*ADAPTERS, "EmoFullFineTuningTest"), FROZEN_ENCODER),
    },
    "test_retain_grad_hidden_states_attentions": dict.fromkeys((*FROZEN, *ADAPTERS), NO_GRAD_TO_INPUT),
}


def locked_version(package: str = "transformers") -> str:
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        if line.lower().startswith(f"{package}=="):
            return line.split("==", 1)[1].strip()
    raise SystemExit(f"requirements.lock pins no {package}")


def fetch_common_tests(workdir: Path, version: str) -> Path:
    """The sdist's two common test files (and stand-ins for their missing imports) under workdir/tests."""
    sdist = workdir / f"transformers-{version}.tar.gz"
    if not sdist.exists():
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
                        f"transformers=={version}", "-d", str(workdir)], check=True)
    tests = workdir / "tests"
    shutil.rmtree(tests, ignore_errors=True)
    tests.mkdir(parents=True)
    with tarfile.open(sdist) as archive:
        for name in COMMON_FILES:
            member = archive.getmember(f"transformers-{version}/{name}")
            (workdir / name).write_bytes(archive.extractfile(member).read())
    (tests / "__init__.py").write_text("")
    for name, text in STAND_INS.items():
        path = tests / name
        path.parent.mkdir(exist_ok=True)
        (path.parent / "__init__.py").write_text("")
        path.write_text(text)
    shutil.copy(TESTER, tests / "test_modeling_hub_emo.py")
    return tests


def ensure_test_dependencies(workdir: Path) -> list[str]:
    """`parameterized` (imported by the common tests) in a scratch target when the venv lacks it."""
    try:
        import parameterized  # noqa: F401
    except ImportError:
        target = workdir / "deps"
        if (target / "parameterized").is_dir():
            return [str(target)]
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--target", str(target), "parameterized"],
                       check=True)
        return [str(target)]
    return []


def run_pytest(workdir: Path, extra_paths: list[str], select: str | None) -> Path:
    report = workdir / "report.xml"
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts=",
               "--rootdir", str(workdir), f"--junitxml={report}", "tests/test_modeling_hub_emo.py"]
    if select:
        command += ["-k", select]
    paths = [str(ROOT), *extra_paths, *filter(None, [os.environ.get("PYTHONPATH")])]
    env = {**os.environ, "PYTHONPATH": ":".join(paths)}
    subprocess.run(command, cwd=workdir, env=env, check=False)
    return report


def summarise(report: Path) -> int:
    """Counts per variant and each failure; 1 if any failure is not expected."""
    counts: dict[str, Counter] = {}
    unexpected = 0
    failures = []
    for case in ET.parse(report).getroot().iter("testcase"):
        variant = case.get("classname", "").rsplit(".", 1)[-1]
        name = case.get("name")
        outcome = "passed"
        for tag in ("failure", "error", "skipped"):
            node = case.find(tag)
            if node is not None:
                outcome = "skipped" if tag == "skipped" else "failed"
                message = (node.get("message") or node.text or "").strip().splitlines()
                break
        counts.setdefault(variant, Counter())[outcome] += 1
        if outcome == "failed":
            base = re.sub(r"_\d+_.*$", "", name)
            reason = EXPECTED_FAILURES.get(base, {}).get(variant) or EXPECTED_FAILURES.get(base, {}).get("*")
            unexpected += reason is None
            failures.append((variant, name, reason or "UNEXPECTED: " + (message[0][:160] if message else "")))
    for variant, counter in counts.items():
        total = sum(counter.values())
        print(f"{variant:24s} {counter['passed']:4d} passed {counter['failed']:3d} failed "
              f"{counter['skipped']:4d} skipped of {total}")
    for variant, name, reason in failures:
        print(f"FAILED {variant}::{name}: {reason}")
    return 1 if unexpected else 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/hub_emo_transformers_tests"))
    parser.add_argument("-k", dest="select", help="pytest -k expression (e.g. a variant or a test name)")
    args = parser.parse_args(argv)
    args.workdir.mkdir(parents=True, exist_ok=True)
    version = locked_version()
    fetch_common_tests(args.workdir, version)
    print(f"transformers {version} common tests in {args.workdir}")
    report = run_pytest(args.workdir, ensure_test_dependencies(args.workdir), args.select)
    return summarise(report)


if __name__ == "__main__":
    sys.exit(main())
