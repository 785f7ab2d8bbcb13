"""Training on two processes (nstlib.distributed) under torchrun with gloo on the CPU, against one
process: (a) two processes with batch b equal one process with batch 2b (the union of their
slices) for AdaIN, StyleBank (both banks, auto-encoder steps and the gradient rescaling) and
CycleGAN; (b) a run killed after a checkpoint, or stopped by its callback between checkpoints,
resumes on two processes to the weights of an uninterrupted two-process run, CycleGAN's per-rank
image pools included; (c) a checkpoint resumes only on the number of processes that wrote it.

The two-process runs are this file run as a script by torchrun (`worker`): each launch runs a list
of jobs and saves what each rank ends with, and the tests compare. Tiny runs: random-weight VGG,
crops of 32 px, one crop per rank, a few steps; each launch takes seconds.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import nstlib

# How closely two processes reproduce one over STEPS steps, as measured (the bounds leave a margin
# of 30 or more):
# * with plain SGD (its step is lr x the gradient, so a gradient summed instead of averaged would
#   show), max |weights_2 - weights_1| / max |weights_1 - initial|: AdaIN 3e-6 and StyleBank 3e-5 in
#   float32, CycleGAN 1e-14 in float64;
# * with the trainers' Adam, the loss of every step (the global batch's: the mean of the ranks'):
#   3e-7 relative in float32 (AdaIN, StyleBank), 3e-16 in float64 (CycleGAN), and CycleGAN's
#   weights to 2e-7 of their change. Adam divides each weight's step by its gradient's magnitude, so
#   a weight whose gradient is within float32 rounding of zero moves by about lr either way: 5% of
#   AdaIN's decoder weights (mostly in its first layers, fed by relu4_1 channels that 32 px crops
#   barely excite) and 0.07% of StyleBank's end up apart by up to STEPS x lr; any two float32 runs
#   whose sums are ordered differently (one batch of 2, or two of 1) do the same.
# CycleGAN runs in float64: in float32, instance norm over the 8 x 8 maps of a 32 px crop amplifies
# rounding about a thousand times (the losses of one and two processes part by 2e-3 by step 5).
# Johnson's networks run in float64 too, but its losses are summed in float32 (the trainer hands the
# loss float32 features, as it does from bf16), so its weights part by float32's rounding: SGD 2.8e-9
# and Adam 2.7e-5 of their change on an Intel Xeon without bf16 (under 1e-9 and 1e-5 on an AMD EPYC).
# A gradient summed over the ranks instead of averaged would put SGD's weights apart by about 1.
SGD_RTOL = {"adain": 1e-4, "stylebank": 1e-3, "cyclegan": 1e-12, "johnson": 1e-7}
ADAM_RTOL = {"cyclegan": 1e-5, "johnson": 1e-3}  # the float64 networks; the others: see `differing` below
LOSS_RTOL = {"adain": 1e-5, "stylebank": 1e-5, "cyclegan": 1e-12, "johnson": 1e-6}  # Johnson sums its losses in float32

STEPS = 5
SGD_LR = {"adain": 1e-8, "stylebank": 1e-8, "cyclegan": 1e-3, "johnson": 1e-9}  # their losses' gradients differ in scale
STEP_KILLED = 3  # after the checkpoint at step 2 (checkpoint_every=2), before the one at 4


# ----------------------------------------------------------------------------- the runs, in any process

def _images():
    from nstlib.datasets import ImageSet

    return (ImageSet(["tubingen", "golden_gate", "chelsea"], load_size=48),
            ImageSet(["starry_night", "the_scream"], load_size=48))


def _vgg():
    from nstlib.features import VGGFeatures

    torch.manual_seed(0)  # random weights, the same in every process
    return VGGFeatures("vgg16", None)


def sgd(params, lr, betas=None):
    """Plain SGD in place of the trainers' Adam (the `optimizer="sgd"` runs): Adam divides each
    element's step by the root of its squared gradients, so it would hide a gradient summed instead
    of averaged; SGD's step is the gradient times lr."""
    return torch.optim.SGD(params, lr=lr)


def train(kind: str, run_dir, steps: int, batch_size: int, callback=None, optimizer: str = "adam", **settings):
    """One tiny run of `kind` ('adain', 'stylebank', 'cyclegan' or 'johnson') with fixed initial weights; the
    same call in the test (one process) and in the worker (each rank). Returns (model, TrainRun)."""
    if optimizer == "sgd":
        adam, torch.optim.Adam = torch.optim.Adam, sgd
        try:
            return train(kind, run_dir, steps, batch_size, callback, **{"lr": SGD_LR[kind], **settings})
        finally:
            torch.optim.Adam = adam
    if kind == "adain":
        from nstlib.adain import AdaIN, Encoder
        from nstlib.adain_training import train_decoder

        encoder = Encoder(vgg=_vgg())
        torch.manual_seed(1)
        model = AdaIN(encoder=encoder)
        run = train_decoder(model, *_images(), run_dir, steps=steps, batch_size=batch_size, crop=32, load_size=48,
                            checkpoint_every=2, sample_every=100, shuffle_style_channels=True, progress=False,
                            callback=callback, precision="fp32", **settings)
        return model.decoder, run
    if kind == "stylebank":
        from nstlib.stylebank import StyleBank
        from nstlib.stylebank_training import train_stylebank

        vgg = _vgg()
        torch.manual_seed(2)
        model = StyleBank(2)
        run = train_stylebank(model, _images()[0], ["starry_night", "the_scream"], vgg, run_dir, steps=steps,
                              batch_size=batch_size, crop=32, style_size=64, checkpoint_every=2, T=2,
                              ae_lambda=0.5, progress=False, callback=callback, precision="fp32", **settings)
        return model, run
    if kind == "cyclegan":
        from nstlib import datasets
        from nstlib.cyclegan import CycleGAN
        from nstlib.cyclegan_training import train_translation
        from nstlib.translation_task import TranslationTask

        load_image = datasets.load_image
        datasets.load_image = lambda *args, **kwargs: load_image(*args, **kwargs).double()  # float64 crops
        try:
            task = TranslationTask(*_images(), _images()[0], crop=32, test_crops=2)
            torch.manual_seed(3)
            model = CycleGAN(blocks=1, width=8).double()
            run = train_translation(model, task, run_dir, steps=steps, batch_size=batch_size, checkpoint_every=2,
                                    eval_every=100, sample_every=100, progress=False, callback=callback,
                                    precision="fp32", **{"pool_size": 0, **settings})
        finally:
            datasets.load_image = load_image
        return model, run
    if kind == "johnson":  # CIN, one random style per image: the styles of the global batch are sliced too
        from nstlib import datasets
        from nstlib.images import load_image
        from nstlib.johnson import TransformNet
        from nstlib.johnson_training import train_transform_net

        # float64, like CycleGAN: instance norm on small maps amplifies float32 rounding past any bound
        vgg = _vgg().double()
        styles = [load_image(s, max_size=64).double() for s in ("starry_night", "the_scream")]
        datasets.load_image = lambda *args, **kwargs: load_image(*args, **kwargs).double()
        try:
            torch.manual_seed(4)
            model = TransformNet(n_styles=2).double()
            run = train_transform_net(model, _images()[0], styles, vgg, run_dir, steps=steps, batch_size=batch_size,
                                      crop=48, load_size=64, checkpoint_every=2, sample_every=100, progress=False,
                                      callback=callback, precision="fp32", **settings)
        finally:
            datasets.load_image = load_image
        return model, run
    raise ValueError(kind)


def _gradient_semantics(out: Path) -> None:
    """average_gradients on three parameters: `a` with a gradient on both ranks, `b` on rank 1
    only, `c` on neither."""
    from nstlib import distributed

    rank = distributed.rank()
    a, b, c = (torch.nn.Parameter(torch.zeros(3)) for _ in range(3))
    opt = torch.optim.Adam([a, b, c])
    (a * torch.tensor([1.0, 2.0, 3.0]) * (rank + 1)).sum().backward()  # grad a: (1, 2, 3) x (rank + 1)
    if rank == 1:
        (b * torch.tensor([4.0, 4.0, 4.0])).sum().backward()
    distributed.average_gradients(opt)
    distributed.average_gradients(opt)  # a second call before the step must not average again
    torch.save({"a": a.grad, "b": b.grad, "c": c.grad}, out / f"rank{rank}.pt")


def worker(jobs_file: str) -> None:
    """Run under torchrun: each job of the JSON list trains (or checks) and saves, per rank,
    out/rank<r>.pt with the weights, history, step and stop (or the error's message)."""
    from nstlib import distributed

    distributed.setup("cpu")
    for job in json.loads(Path(jobs_file).read_text()):
        out = Path(job["out"])
        out.mkdir(parents=True, exist_ok=True)
        if job["kind"] == "gradients":
            _gradient_semantics(out)
            continue
        stop = job.get("stop")

        def callback(step, values, model, stop=stop):
            if stop and step == stop["step"]:
                if stop["how"] == "kill":  # no save, no goodbye: the process is gone
                    os.kill(os.getpid(), signal.SIGKILL)
                raise KeyboardInterrupt  # what Ctrl-C does

        try:
            model, run = train(job["kind"], job["run_dir"], job["steps"], 1, callback, job.get("optimizer", "adam"),
                               **job.get("settings", {}))
        except ValueError as e:
            torch.save({"error": str(e)}, out / f"rank{distributed.rank()}.pt")
            continue
        torch.save({"state": model.state_dict(), "history": run.history, "step": run.step, "stopped": run.stopped,
                    "processes": run.settings["processes"]}, out / f"rank{distributed.rank()}.pt")
    distributed.shutdown()


# ----------------------------------------------------------------------------- launching

def _env() -> dict:
    """The environment of a child process: it must import the nstlib this test imported (a worktree
    on PYTHONPATH, or the clone that CI installed with pip install -e), whatever the current folder
    and whatever else is installed."""
    here = [str(Path(nstlib.__file__).resolve().parents[1])]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(here + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    env["OMP_NUM_THREADS"] = "1"  # two processes on a shared CPU
    return env


def torchrun(*args: str, check: bool = True, timeout: float = 240) -> subprocess.CompletedProcess:
    """`torchrun --standalone --nproc_per_node 2 ARGS` (as python -m torch.distributed.run)."""
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           *args], env=_env(), capture_output=True, text=True, timeout=timeout)
    if check and done.returncode != 0:
        raise AssertionError(f"torchrun failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return done


def run_jobs(tmp: Path, name: str, jobs: list[dict], check: bool = True) -> subprocess.CompletedProcess:
    spec = tmp / f"{name}.json"
    spec.write_text(json.dumps(jobs))
    return torchrun(__file__, str(spec), check=check)


def result(out: Path, rank: int = 0) -> dict:
    return torch.load(out / f"rank{rank}.pt", weights_only=True)


def assert_equal_states(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


# ----------------------------------------------------------------------------- the two-process runs

@pytest.fixture(scope="module")
def two_process_runs(tmp_path_factory):
    """One torchrun launch: each trainer STEPS steps on two processes (batch 1 each); CycleGAN with
    pools, straight and stopped by the callback at step 3 then resumed; gradient semantics; and
    last, an AdaIN run killed (SIGKILL, rank 0) at step 3, after the checkpoint of step 2. A second
    launch resumes the killed run, and tries to resume a one-process checkpoint."""
    tmp = tmp_path_factory.mktemp("ddp")
    jobs = [{"kind": kind, "run_dir": str(tmp / f"{kind}-{opt}"), "out": str(tmp / f"{kind}-{opt}-out"), "steps": STEPS,
             "optimizer": opt} for kind in ("adain", "stylebank", "cyclegan", "johnson") for opt in ("adam", "sgd")]
    pools = {"pool_size": 2}  # full after 2 steps: later steps draw from it
    jobs += [
        {"kind": "cyclegan", "run_dir": str(tmp / "pools"), "out": str(tmp / "pools-out"), "steps": STEPS,
         "settings": pools},
        {"kind": "cyclegan", "run_dir": str(tmp / "pools-stopped"), "out": str(tmp / "pools-stopped-out"),
         "steps": STEPS, "settings": pools, "stop": {"step": STEP_KILLED, "how": "interrupt"}},
        {"kind": "cyclegan", "run_dir": str(tmp / "pools-stopped"), "out": str(tmp / "pools-resumed-out"),
         "steps": STEPS, "settings": pools},
        {"kind": "gradients", "out": str(tmp / "gradients-out")},
        {"kind": "adain", "run_dir": str(tmp / "killed"), "out": str(tmp / "killed-out"), "steps": STEPS,
         "stop": {"step": STEP_KILLED, "how": "kill"}},
    ]
    killed = run_jobs(tmp, "first", jobs, check=False)
    finished = [job["out"] for job in jobs[:-1] if all((Path(job["out"]) / f"rank{r}.pt").exists() for r in (0, 1))]
    assert len(finished) == len(jobs) - 1, killed.stderr[-3000:]  # every job but the last one ran
    assert killed.returncode != 0 and not (tmp / "killed-out" / "rank0.pt").exists(), killed.stderr[-3000:]
    assert torch.load(tmp / "killed" / "checkpoint.pt", weights_only=True)["step"] == STEP_KILLED - 1

    train("adain", tmp / "one-process", 1, 2)  # a checkpoint of one process, for (c)
    run_jobs(tmp, "second", [
        {"kind": "adain", "run_dir": str(tmp / "killed"), "out": str(tmp / "resumed-out"), "steps": STEPS},
        {"kind": "adain", "run_dir": str(tmp / "one-process"), "out": str(tmp / "refused-out"), "steps": 2},
    ])
    return tmp


def compare(one: dict, two: dict, initial: dict) -> tuple[float, float]:
    """How far apart two runs' weights are, against how far training moved them: (max |one - two|
    over every weight / max |one - initial|, the fraction of weights that differ by more than 1e-3
    of that largest move)."""
    keys = [k for k, x in one.items() if x.is_floating_point()]
    change = max(float((one[k] - initial[k]).abs().max()) for k in keys)
    difference = max(float((one[k] - two[k]).abs().max()) for k in keys)
    differing = sum(int(((one[k] - two[k]).abs() > 1e-3 * change).sum()) for k in keys)
    return difference / change, differing / sum(one[k].numel() for k in keys)


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
@pytest.mark.parametrize("kind", ["adain", "stylebank", "cyclegan", "johnson"])
def test_two_processes_equal_one_process_on_the_union_of_their_batches(two_process_runs, tmp_path, kind, optimizer):
    """(a) Rank r trains on crop r of the global batch of 2; one process with batch 2 draws the
    same two crops. The ranks agree bit for bit; two processes and one up to rounding (see SGD_RTOL)."""
    ranks = [result(two_process_runs / f"{kind}-{optimizer}-out", r) for r in (0, 1)]
    assert ranks[0]["step"] == STEPS and ranks[0]["stopped"] == "finished" and ranks[0]["processes"] == 2
    assert_equal_states(ranks[0]["state"], ranks[1]["state"])  # one model on both ranks, bit for bit
    model, run = train(kind, tmp_path / "one", STEPS, 2, optimizer=optimizer)
    assert "processes" not in run.settings  # one process: the record is as it always was
    initial = train(kind, tmp_path / "initial", 0, 2, optimizer=optimizer)[0].state_dict()
    apart, differing = compare(model.state_dict(), ranks[0]["state"], initial)
    loss = "cycle" if kind == "cyclegan" else "total"
    mine = ranks[0]["history"][loss]  # the global batch's: the mean over the ranks
    print(f"{kind} {optimizer}: weights apart by {apart:.1e} of their change ({differing:.3%} by more than 1e-3); "
          f"losses by {max(abs(a - b) / abs(b) for a, b in zip(mine, run.history[loss]) if b == b):.1e}")
    assert mine == pytest.approx(run.history[loss], rel=LOSS_RTOL[kind], nan_ok=True)
    if optimizer == "sgd":
        assert apart < SGD_RTOL[kind]
    elif kind in ADAM_RTOL:
        assert apart < ADAM_RTOL[kind]  # float64 networks: rounding-level gradients move a weight by far less than lr
    else:
        assert differing < 0.1  # float32: the weights whose gradient is rounding (see the top)


def test_stylebank_under_two_processes_trains_both_banks_and_rescales(two_process_runs):
    """The comparison above covers what it should: both banks and auto-encoder steps occurred."""
    history = result(two_process_runs / "stylebank-adam-out")["history"]
    assert {0.0, 1.0, -1.0} <= set(history["branch"]) and history["branch"][2] == -1.0
    assert result(two_process_runs / "stylebank-adam-out", 1)["history"]["branch"] == history["branch"]


def test_a_parameter_gets_the_gradient_of_the_ranks_that_used_it(two_process_runs):
    """As DDP with find_unused_parameters: the mean over ranks, zeros from the ranks that did not
    use it; None where no rank did (so Adam leaves it alone); averaged once before a step."""
    for r in (0, 1):
        grads = result(two_process_runs / "gradients-out", r)
        assert torch.equal(grads["a"], torch.tensor([1.5, 3.0, 4.5]))  # ((1, 2, 3) + 2 (1, 2, 3)) / 2
        assert torch.equal(grads["b"], torch.tensor([2.0, 2.0, 2.0]))  # (0 + 4) / 2
        assert grads["c"] is None


def test_a_killed_run_resumes_to_the_weights_of_an_uninterrupted_one(two_process_runs):
    """(b) SIGKILL of rank 0 at step 3 (the checkpoint holds step 2); both ranks resume from it."""
    straight, resumed = result(two_process_runs / "adain-adam-out"), result(two_process_runs / "resumed-out")
    assert resumed["step"] == STEPS and resumed["history"]["total"] == straight["history"]["total"]
    assert_equal_states(straight["state"], resumed["state"])
    assert_equal_states(resumed["state"], result(two_process_runs / "resumed-out", 1)["state"])


def test_a_stopped_run_with_pools_per_rank_resumes_exactly(two_process_runs):
    """(b) The callback stops rank 0 at step 3, between checkpoints: both ranks stop after step 3
    and save, each rank's image pools in the checkpoint; the resumed run ends as the straight one."""
    stopped = [result(two_process_runs / "pools-stopped-out", r) for r in (0, 1)]
    assert [s["stopped"] for s in stopped] == ["interrupted"] * 2 and [s["step"] for s in stopped] == [3, 3]
    straight, resumed = result(two_process_runs / "pools-out"), result(two_process_runs / "pools-resumed-out")
    assert_equal_states(straight["state"], resumed["state"])
    saved = torch.load(two_process_runs / "pools" / "checkpoint.pt", weights_only=True)
    pools = [rank["pools"] for rank in saved["ranks"]]
    assert all(len(p["images"]) == 2 for rank in pools for p in rank)  # full pools, one pair per rank
    assert not torch.equal(pools[0][0]["images"][0], pools[1][0]["images"][0])  # each rank its own fakes
    assert not torch.equal(pools[0][0]["generator"], pools[1][0]["generator"])  # and its own draws


def test_a_resume_on_another_number_of_processes_is_refused(two_process_runs, tmp_path):
    """(c) The checkpoint says how many processes wrote it; another number is one clear line."""
    refused = result(two_process_runs / "refused-out")["error"]
    assert "was written by a run on 1 process, this one has 2 processes; resume it without torchrun" in refused
    with pytest.raises(ValueError, match=r"was written by a run on 2 processes, this one has 1 process; resume "
                                         r"it with torchrun --nproc_per_node 2") as e:
        train("adain", two_process_runs / "adain-adam", STEPS + 1, 1)
    assert "\n" not in str(e.value)


# ----------------------------------------------------------------------------- the command line

def test_train_adain_under_torchrun_reports_once_and_stops_cleanly_on_ctrl_c(tmp_path):
    """`torchrun -m nstlib train-adain` trains on two processes and only rank 0 prints; Ctrl-C
    (SIGINT to torchrun, which passes it on) stops both ranks after the same step with a
    checkpoint; `python -m nstlib` then refuses to resume it on one process, in one line."""
    common = ["--content", "tubingen", "--style", "starry_night", "--batch-size", "1", "--crop", "32",
              "--load-size", "40", "--device", "cpu"]
    run_dir = tmp_path / "run"
    done = torchrun("-m", "nstlib", "train-adain", "--run-dir", str(run_dir), "--steps", "2", *common)
    assert done.stdout.count("finished at step 2") == 1, done.stdout
    saved = torch.load(run_dir / "checkpoint.pt", weights_only=True)
    assert saved["world_size"] == 2 and saved["step"] == 2

    endless = tmp_path / "endless"
    process = subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
                                "2", "-m", "nstlib", "train-adain", "--run-dir", str(endless), "--steps", "1000000",
                                "--checkpoint-every", "1000000", "--sample-every", "1", *common],
                               env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first_sample = endless / "samples" / "step_0000001.jpg"
        for _ in range(1200):  # a bound, not a measurement: until step 1 is done (at most 2 minutes)
            if first_sample.exists() or process.poll() is not None:
                break
            try:
                process.wait(0.1)
            except subprocess.TimeoutExpired:
                pass
        assert first_sample.exists(), process.communicate()[1][-2000:]
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    assert out.count("interrupted at step") == 1, (out, err[-2000:])  # rank 0 alone reports
    step = int(out.split("interrupted at step ")[1].split(";")[0])
    saved = torch.load(endless / "checkpoint.pt", weights_only=True)
    assert saved["step"] == step >= 1 and len(saved["ranks"]) == 2 and len(saved["history"]["total"]) == step

    one = subprocess.run([sys.executable, "-m", "nstlib", "train-adain", "--run-dir", str(run_dir), "--steps", "3",
                          *common], env=_env(), capture_output=True, text=True)
    assert one.returncode == 2 and len(one.stderr.strip().splitlines()) == 1, one.stderr
    assert "written by a run on 2 processes, this one has 1 process" in one.stderr


def test_the_global_batch_is_the_union_of_the_ranks_slices():
    """Every rank draws the global batch from the shared generator and keeps its slice: the slices
    of ranks 0 and 1 are the one-process batch of 2, and each generator ends where it would."""
    from nstlib.datasets import UnpairedBatches

    content, style = _images()
    one = UnpairedBatches(content, style, 2, 32, torch.Generator().manual_seed(5), shuffle_style_channels=True)
    ranks = [UnpairedBatches(content, style, 1, 32, torch.Generator().manual_seed(5), True, shard=(r, 2))
             for r in (0, 1)]
    for _ in range(3):
        c, s = next(one)
        parts = [next(r) for r in ranks]
        assert torch.equal(torch.cat([p[0] for p in parts]), c) and torch.equal(torch.cat([p[1] for p in parts]), s)
    assert all(torch.equal(r.generator.get_state(), one.generator.get_state()) for r in ranks)
    with pytest.raises(ValueError, match="shard must be"):
        UnpairedBatches(content, style, 1, 32, shard=(2, 2))


def test_another_ranks_crops_are_drawn_without_decoding_their_images(monkeypatch):
    """Crops outside this rank's slice draw their random numbers but do not decode an image whose
    size is known (a FolderTask-sized set is not cached)."""
    from nstlib import datasets

    images = datasets.ImageSet(["tubingen", "chelsea"], load_size=40, cache=False)
    g = torch.Generator().manual_seed(0)
    datasets.random_crops(images, 8, 32, g)  # both images seen once: their sizes are known
    loads = []
    real = datasets.load_image
    monkeypatch.setattr(datasets, "load_image", lambda *a, **k: loads.append(a) or real(*a, **k))
    state = g.get_state()
    mine = datasets.random_crops(images, 8, 32, g, keep=slice(2, 4))
    assert mine.shape == (2, 3, 32, 32) and len(loads) == 2  # two decoded, six only drawn
    g.set_state(state)
    assert torch.equal(datasets.random_crops(images, 8, 32, g)[2:4], mine)


def test_one_process_is_untouched_by_the_distributed_helpers():
    from nstlib import distributed

    assert distributed.world_size() == 1 and distributed.rank() == 0 and distributed.is_main()
    assert distributed.global_batch(3) == (3, slice(0, 3)) and distributed.rank_seed(7) == 7
    assert distributed.mean_values({"a": 1.5}) == {"a": 1.5} and distributed.any_rank(True)
    assert distributed.gather({"x": 1}) == [{"x": 1}]
    assert distributed.setup("cpu") == torch.device("cpu")


if __name__ == "__main__":
    worker(sys.argv[1])
