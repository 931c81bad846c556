"""Fine-tune an `EmoForAudioClassification` with `transformers.Trainer`: one or two stages, per fold.

Entry points::

    train(args: TrainArguments | None = None, dataset=None, *, source_dataset=None,
          callbacks=None, **options) -> dict
    train_two_stage(args=None, dataset=None, *, source_domain=None, source_dataset=None,
                    **options) -> dict

``options`` are `TrainArguments` fields (they override ``args``). ``dataset`` /
``source_dataset`` may be `datasets.Dataset`/`DatasetDict` objects instead of the paths in
the arguments. Everything that can be checked (backbone, data, labels, folds, domains,
output folder) is checked before the first step.

Layout of ``output_dir``::

    results.json                  summary: per-fold metrics, mean and std, run settings
    fold-<f>/[stage1|stage2|train]/  Trainer checkpoints, runs/ (TensorBoard), best/ (model)
    fold-<f>/[stage2|train]/results.json, confusion_matrix.png, layer_weights.png

A run interrupted anywhere continues with ``resume=True``: finished stages are read
back, an unfinished one resumes from its last Trainer checkpoint (optimizer, scheduler,
RNG and early-stopping state), and the result equals an uninterrupted run's. Under
``torchrun`` / ``accelerate launch`` the Trainer runs DDP (gloo on CPU, NCCL on GPUs);
only the main process writes files.
"""

from __future__ import annotations

import json
from pathlib import Path

from hub_emo.distributed import host, ranks

from .arguments import TrainArguments
from .planning import check_output_dir, plan, resolve, use_cpu
from .results import choose_fold, mean_validation, fold_summary
from .stage import on_rank_zero, run_stage


def train(args: TrainArguments | None = None, dataset=None, *, source_dataset=None, callbacks=None, **options) -> dict:
    """Fine-tune per fold (one stage, or two with ``source_*`` set); returns and writes ``results.json``."""
    args = resolve(args, options)
    state = _process_state(args)
    # Before the first stage, so no rank can see folders another rank has begun to write.
    on_rank_zero(lambda: check_output_dir(Path(args.output_dir), args.resume), f"{args.output_dir}: checking")
    _check_shared(Path(args.output_dir))
    with state.main_process_first():
        run_plan = plan(args, dataset, source_dataset)
    per_fold: dict[str, dict] = {}
    for stages in run_plan.folds:
        init_from = None
        fold_results = {}
        for stage in stages:
            fold_results[stage.name] = run_stage(run_plan, stage, init_from, callbacks)
            init_from = stage.output_dir / "best"
        final = fold_results[stages[-1].name]
        per_fold[stages[-1].split.name] = {
            **{k: v for k, v in final.items() if k != "loss_history"},
            **({"stage1": fold_results["stage1"]} if "stage1" in fold_results else {}),
        }
    two_stage = any(len(stages) == 2 for stages in run_plan.folds)
    best_fold, chosen_by = choose_fold(per_fold, args.metric_for_best_model)
    results = {
        "dataset": run_plan.dataset_name,
        "label_set": args.label_set,
        "strategy": args.strategy,
        "backbone": args.backbone,
        "domain": args.domain,
        "two_stage": two_stage,
        "source": (
            {"domain": args.source_domain, "dataset": args.source_dataset or run_plan.dataset_name,
             "strategy": args.source_strategy or args.strategy}
            if two_stage else None
        ),
        **fold_summary(per_fold),
        "folds": per_fold,
        "validation": mean_validation(per_fold),
        "best_fold": best_fold,
        "best_fold_chosen_by": chosen_by,
        "best_model": per_fold[best_fold]["model"],
        "arguments": args.to_dict(),
    }
    if state.is_main_process:
        Path(args.output_dir).mkdir(parents=True, exist_ok=True)
        (Path(args.output_dir) / "results.json").write_text(json.dumps(results, indent=2, default=str))
    state.wait_for_everyone()
    return results


def _process_state(args: TrainArguments):
    """accelerate's process state, whose process group (under torchrun) waits ``ddp_timeout``
    seconds at a barrier: the Trainer's own arguments come later and find the group made."""
    from datetime import timedelta

    from accelerate import PartialState

    return PartialState(cpu=use_cpu(args), timeout=timedelta(seconds=args.ddp_timeout))


#: Seconds a rank looks for rank 0's marker in ``output_dir`` before calling the folder unshared
#: (a network file system may show a new file to another host a moment later).
SHARED_WAIT = 10.0


def _check_shared(out: Path) -> None:
    """Refuse, on every rank, an ``output_dir`` that some rank does not share with rank 0: the
    Trainer saves checkpoints and the best model on rank 0 only, and every rank reads them back
    (best model, stage 2's start, resume)."""
    import os
    import time
    import uuid

    with ranks() as group:
        if group.world == 1:
            return
        marker = out / f".shared-{group.broadcast(uuid.uuid4().hex)}"
        if group.main:
            out.mkdir(parents=True, exist_ok=True)
            marker.write_text(host())
        group.barrier()
        deadline = time.monotonic() + SHARED_WAIT
        seen = group.main
        while not seen and time.monotonic() < deadline:
            seen = out.is_dir() and marker.name in os.listdir(out)  # listing revalidates an NFS client's view
            if not seen:
                time.sleep(0.5)
        error = None if seen else ValueError(
            f"output_dir {out} is not shared: this host ({host()}) does not see the files rank 0 writes there. "
            "The Trainer saves checkpoints and the best model on rank 0 only and every rank reads them back: "
            "give an output_dir on a file system every host mounts")
        group.barrier()
        if group.main:
            marker.unlink()
        group.agree(error, f"output_dir {out}")


def train_two_stage(args: TrainArguments | None = None, dataset=None, *, source_domain: str | None = None,
                    source_dataset=None, **options) -> dict:
    """`train` with stage 1 on ``source_domain`` (and/or ``source_dataset``), stage 2 on the target."""
    if source_domain is not None:
        options["source_domain"] = source_domain
    args = resolve(args, options)
    if not args.two_stage and source_dataset is None:
        raise ValueError("a two-stage run needs source_domain or source_dataset")
    return train(args, dataset, source_dataset=source_dataset)
