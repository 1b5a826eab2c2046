#!/usr/bin/env python3
"""Kill -9 anywhere: `qnas train`, `qnas search` and `qnas export` killed with
SIGKILL at random moments, their folders checked after every kill, resumed,
and the finished results compared with an uninterrupted run's.

After each kill, every file under its final name must be whole: each CSV has
complete lines with the header's field count, each JSON parses, each YAML
ends with a newline, supernet.pt is an intact zip archive (LibTorch's format)
and an export folder, when present, holds every file of the reference export
byte for byte. Temporary files (".tmp." in the name) are counted, not
checked; once a chain has finished, none may be left (the next write of a
file removes what a killed writer left of it). Then the work continues as a
user would continue it (train --resume; search --resume once state.json
exists; export again), killed again at a new random moment, until it
finishes. At the end supernet.pt and
train_log.csv (timing columns aside) must equal the uninterrupted training's,
evaluations.csv (eval_s aside), pareto.csv and hypervolume.csv (timing
columns aside) the uninterrupted search's.

    python3 experiments/reliability/kill9.py [--kills N] [--seed S] [--qnas build/qnas]

Writes runs/kill9/<UTC time>/{summary.md,kills.csv}; exits non-zero on any
corrupt file or difference. Standard library only.
"""
import argparse
import csv
import filecmp
import io
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FMNIST = "/usr/share/datasets/fashion-mnist"
TIMING = {"epoch_s", "images_per_s", "eval_s", "propose_s", "wall_s", "fit_s"}


def tiny_config(out_dir, epochs=3):
    return (f"seed: 1\nthreads: 1\n"
            f"data: {{dir: {FMNIST}, train_subset: 1500, val_size: 300}}\n"
            "supernet: {stem_width: 8, stages: [{width: 16, stride: 2}, {width: 24, stride: 2, se: true, act: hswish}],"
            " kernel: [3, 5], expand: [2, 3], depth: [1, 2], head_width: 48, feature_width: 32}\n"
            f"train: {{epochs: {epochs}, batch_size: 50, lr: 0.3, random_subnets: 1, eval_images: 300}}\n"
            "eval: {batch_size: 150, bn_calib_images: 150}\n"
            "search: {tactic: linas, objectives: {top1: max, model_bytes: min}, population: 4, evaluations: 14,"
            " inner_evaluations: 400, folds: 2}\n"
            f"output: {{dir: {out_dir}}}\n")


def check_csv(path):
    text = path.read_text()
    if text and not text.endswith("\n"):
        return "last line has no newline"
    rows = list(csv.reader(io.StringIO(text)))
    if not rows:
        return "empty"
    bad = [i + 1 for i, r in enumerate(rows) if len(r) != len(rows[0])]
    return f"lines {bad[:5]} do not have the header's {len(rows[0])} fields" if bad else None


def check_file(path):
    if path.suffix == ".csv":
        return check_csv(path)
    if path.suffix == ".json":
        try:
            json.loads(path.read_text())
        except ValueError as e:
            return f"not JSON ({e})"
    if path.suffix == ".yaml" and not path.read_text().endswith("\n"):
        return "YAML cut short (no final newline)"
    if path.suffix == ".pt":
        try:
            with zipfile.ZipFile(path) as z:
                bad = z.testzip()
            return f"zip member {bad} corrupt" if bad else None
        except zipfile.BadZipFile as e:
            return f"not an intact zip archive ({e})"
    return None


def check_folder(folder, reference_export=None):
    """(problems, temporaries) of everything under folder's final names."""
    problems, temporaries = [], 0
    if not folder.exists():
        if reference_export is not None and folder.parent.exists():
            temporaries += sum(1 for p in folder.parent.iterdir() if ".tmp." in p.name)
        return problems, temporaries
    for path in sorted(folder.rglob("*")):
        if ".tmp." in path.name or any(".tmp." in p.name for p in path.parents):
            temporaries += 1
            continue
        if path.is_file():
            problem = check_file(path)
            if problem:
                problems.append(f"{path.relative_to(folder)}: {problem}")
    if reference_export is not None:  # an export is staged in a temporary sibling folder
        temporaries += sum(1 for p in folder.parent.iterdir() if ".tmp." in p.name)
        for name in os.listdir(reference_export):
            mine = folder / name
            if not mine.exists() or not filecmp.cmp(reference_export / name, mine, shallow=False):
                problems.append(f"export folder visible without an equal {name}")
    return problems, temporaries


def without_columns(path, drop):
    rows = list(csv.reader(io.StringIO(path.read_text())))
    keep = [i for i, h in enumerate(rows[0]) if h not in drop and not h.startswith("latency")]
    return [[r[i] for i in keep] for r in rows]


def storages(checkpoint):
    """The tensors' bytes in a LibTorch archive, sorted: the optimizer's state
    is keyed by tensor addresses, so the same tensors are stored in another
    order from one process to the next."""
    with zipfile.ZipFile(checkpoint) as z:
        return sorted(z.read(n) for n in z.namelist() if "/data/" in n)


def run_to_end(args, env):
    return subprocess.run(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)


class Killer:
    def __init__(self, qnas, rng, log):
        self.qnas, self.rng, self.log = qnas, rng, log
        self.env = dict(os.environ)

    def kills(self, phase):
        return sum(1 for k in self.log if k["phase"] == phase)

    def attempt(self, phase, args, window_s, folder, reference_export=None):
        """Starts qnas, kills it after a random delay; True when it finished first."""
        delay = self.rng.uniform(0.0, window_s)
        start = time.monotonic()
        p = subprocess.Popen([str(self.qnas)] + args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=self.env)
        try:
            p.wait(timeout=delay)
            if p.returncode != 0:
                raise SystemExit(f"{phase}: qnas {' '.join(args)} failed with exit code {p.returncode}")
            return True
        except subprocess.TimeoutExpired:
            p.send_signal(signal.SIGKILL)
            p.wait()
        problems, temporaries = check_folder(folder, reference_export)
        self.log.append({"phase": phase, "at_s": round(time.monotonic() - start, 2), "files": sum(
            1 for f in folder.rglob("*") if f.is_file()) if folder.exists() else 0, "temporaries": temporaries,
            "problems": "; ".join(problems)})
        print(f"kill {len(self.log):2d}: {phase} at {self.log[-1]['at_s']:.2f}s, "
              f"{'corrupt: ' + self.log[-1]['problems'] if problems else 'files whole'}", file=sys.stderr)
        return False


def mount_tmpfs(folder, size_bytes):
    """A tmpfs of size_bytes at folder; None, or why it cannot be made."""
    folder.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_bytes}", "tmpfs", str(folder)],
                       capture_output=True, text=True)
    return None if r.returncode == 0 else (r.stderr.strip() or "mount failed")


def unmount(folder):
    subprocess.run(["umount", str(folder)], capture_output=True)


def disk_full(out, ref, qnas, env, differences):
    """train and search into a tmpfs too small for them: a clear error, every
    earlier file whole; moved to a roomy disk, --resume ends as the reference."""
    page = lambda n: (n + 4095) // 4096 * 4096  # tmpfs charges whole pages
    ckpt = page((ref / "run" / "supernet.pt").stat().st_size)
    startup = sum(page((ref / "run" / f).stat().st_size)
                  for f in ("config.resolved.yaml", "classes.json", "run.json", "space.json", "state.json"))
    results = []
    # train: room for one checkpoint but not for the next one's temporary copy;
    # search: the supernet, its first files and a few rows.
    for phase, size in (("train", ckpt * 3 // 2 + startup), ("search", ckpt + startup + 5 * 4096)):
        mnt = out / f"full_{phase}"
        why = mount_tmpfs(mnt, (size + 4095) // 4096 * 4096)
        if why:
            return f"skipped: cannot mount a tmpfs ({why}); needs root and a kernel that allows it"
        try:
            (out / f"full_{phase}.yaml").write_text(tiny_config(mnt / "run"))
            if phase == "search":
                (mnt / "run").mkdir()
                shutil.copy(ref / "run" / "supernet.pt", mnt / "run" / "supernet.pt")
            r = run_to_end([qnas, phase, str(out / f"full_{phase}.yaml")], env)
            lines = [l for l in r.stderr.splitlines() if l.startswith("qnas: ") or "terminate" in l]
            message = lines[-1] if lines else (r.stderr.strip().splitlines() or [""])[-1]
            problems, temporaries = check_folder(mnt / "run")
            if r.returncode != 1 or "No space left on device" not in message:
                differences.append(f"disk full ({phase}): exit code {r.returncode}, last message '{message}'")
            differences.extend(f"disk full ({phase}): {p}" for p in problems)
            if temporaries:
                differences.append(f"disk full ({phase}): {temporaries} temporaries left on the full disk")
            moved = out / f"moved_{phase}" / "run"
            shutil.copytree(mnt / "run", moved)
        finally:
            unmount(mnt)
        (out / f"moved_{phase}.yaml").write_text(tiny_config(moved))
        resume = ["--resume"] if phase == "train" or (moved / "state.json").exists() else []
        resumed = run_to_end([qnas, phase, str(out / f"moved_{phase}.yaml")] + resume, env)
        if resumed.returncode != 0:
            differences.append(f"disk full ({phase}): --resume on a roomy disk failed: {resumed.stderr[-300:]}")
            continue
        names = ["train_log.csv"] if phase == "train" else ["evaluations.csv", "pareto.csv", "hypervolume.csv"]
        for name in names:
            if without_columns(moved / name, TIMING) != without_columns(ref / "run" / name, TIMING):
                differences.append(f"disk full ({phase}): {name} differs after --resume")
        if phase == "train" and storages(moved / "supernet.pt") != storages(ref / "run" / "supernet.pt"):
            differences.append("disk full (train): supernet.pt differs after --resume")
        results.append(f"{phase} stopped with '{message}'")
    return "; ".join(results)


def timed(args, env):
    start = time.monotonic()
    r = run_to_end(args, env)
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(map(str, args))} failed:\n{r.stderr[-2000:]}")
    return time.monotonic() - start


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kills", type=int, default=8, help="kills per command (default 8)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--qnas", default=str(ROOT / "build" / "qnas"))
    a = ap.parse_args()
    out = ROOT / "runs" / "kill9" / datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    out.mkdir(parents=True)
    rng, log, differences = random.Random(a.seed), [], []
    killer = Killer(Path(a.qnas), rng, log)
    q = [a.qnas]

    # Uninterrupted references.
    ref = out / "reference"
    (out / "ref.yaml").write_text(tiny_config(ref / "run"))
    train_s = timed(q + ["train", str(out / "ref.yaml")], killer.env)
    search_s = timed(q + ["search", str(out / "ref.yaml")], killer.env)
    export_args = ["export", str(out / "ref.yaml"), "--subnet", "largest", "--bits", "4/8", "--format", "onnx", "--out"]
    export_s = timed(q + export_args + [str(ref / "export")], killer.env)
    print(f"references: train {train_s:.1f}s, search {search_s:.1f}s, export {export_s:.1f}s", file=sys.stderr)

    # Chains: a fresh folder, killed at a random moment, continued, killed
    # again (at most 3 times per chain), continued to the end, compared.
    def chain(phase, folder, command, window_s, reference_export=None):
        kills = 0
        while True:
            args, export_to = command(kills)
            final = kills >= 3 or killer.kills(phase) >= a.kills
            if killer.attempt(phase, args, 1e9 if final else window_s, export_to or folder, reference_export):
                left = [str(p.relative_to(out)) for p in (export_to or folder).parent.rglob("*") if ".tmp." in p.name]
                if left:
                    differences.append(f"{phase}: temporaries left after the chain finished: {', '.join(left)}")
                return export_to
            kills += 1

    n = 0
    while killer.kills("train") < a.kills:
        run = out / f"train{n}" / "run"
        (out / f"train{n}.yaml").write_text(tiny_config(run))
        chain("train", run, lambda k: (["train", str(out / f"train{n}.yaml"), "--resume"], None), train_s * 1.1)
        if storages(run / "supernet.pt") != storages(ref / "run" / "supernet.pt"):
            differences.append(f"train{n}: supernet.pt holds other tensors than the uninterrupted training's")
        if without_columns(run / "train_log.csv", TIMING) != without_columns(ref / "run" / "train_log.csv", TIMING):
            differences.append(f"train{n}: train_log.csv differs (timing columns aside)")
        n += 1

    n = 0
    while killer.kills("search") < a.kills:
        run = out / f"search{n}" / "run"
        run.mkdir(parents=True)
        shutil.copy(ref / "run" / "supernet.pt", run / "supernet.pt")
        yaml = out / f"search{n}.yaml"
        yaml.write_text(tiny_config(run))
        chain("search", run, lambda k: (["search", str(yaml)] + (["--resume"] if (run / "state.json").exists() else []),
                                        None), search_s * 1.1)
        for name in ("evaluations.csv", "pareto.csv", "hypervolume.csv"):
            if without_columns(run / name, TIMING) != without_columns(ref / "run" / name, TIMING):
                differences.append(f"search{n}: {name} differs from the uninterrupted search's (timing columns aside)")
        n += 1

    # export has no resume: each attempt is the same command again (--force
    # from the second on, as an earlier one may have finished its folder just
    # before the kill); the folder must be absent or whole after a kill, and
    # equal the reference at the end.
    n = 0
    while killer.kills("export") < a.kills:
        target = out / f"export{n}" / "out"
        folder = chain("export", out / f"export{n}", lambda k: (
            export_args + [str(target)] + (["--force"] if k else []), target), export_s * 1.1, ref / "export")
        for name in os.listdir(ref / "export"):
            if not filecmp.cmp(ref / "export" / name, folder / name, shallow=False):
                differences.append(f"export{n}: {name} differs from the uninterrupted export's")
        n += 1

    full = disk_full(out, ref, a.qnas, killer.env, differences)

    corrupt = [k for k in log if k["problems"]]
    with open(out / "kills.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(log[0].keys()))
        w.writeheader()
        w.writerows(log)
    per_phase = {p: sum(1 for k in log if k["phase"] == p) for p in ("train", "search", "export")}
    summary = (f"# kill -9 anywhere ({datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, seed {a.seed})\n\n"
               f"- kills: {len(log)} ({', '.join(f'{p} {n}' for p, n in per_phase.items())}); reference times: train "
               f"{train_s:.1f} s, search {search_s:.1f} s, export {export_s:.1f} s\n"
               f"- corrupt files visible under their final names: {len(corrupt)}\n"
               f"- temporaries left beside them (max over kills): {max(k['temporaries'] for k in log)}\n"
               f"- differences after resuming: {len(differences)}\n"
               f"- disk full: {full}\n" +
               "".join(f"  - {d}\n" for d in differences) +
               "".join(f"  - kill at {k['phase']} {k['at_s']} s: {k['problems']}\n" for k in corrupt))
    (out / "summary.md").write_text(summary)
    print(summary + f"\n(files in {out})", file=sys.stderr)
    return 1 if corrupt or differences else 0


if __name__ == "__main__":
    sys.exit(main())
