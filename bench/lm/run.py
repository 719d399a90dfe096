#!/usr/bin/env python3
"""Side-by-side training throughput: firth vs PyTorch, word-level LSTM LM on PTB (Zaremba et al.
"small": 2x200 LSTM, bptt 20, batch 20, SGD, clip 5), CPU, same thread count, same machine, one
run. Alternates the two tools (A B A B ...) so that drift in machine load hits both, and prints the
median training tokens/s of each, their ratio, and the GFLOP/s each reaches against this machine's
measured sgemm peak.

Usage: python3 bench/lm/run.py [--ptb DIR] [--steps N] [--threads T] [--repeats R]
                               [--firth BIN --gemm-peak BIN]  (prebuilt binaries: no cargo needed)
  --torch-script defaults to ../shared/bench/torch_ptb_lm.py (the PyTorch baseline; needs
  `pip install torch`). Run from the repository root.
"""
import argparse, json, os, re, shutil, statistics, subprocess, sys, tempfile

p = argparse.ArgumentParser()
p.add_argument("--ptb", default="../shared/data/ptb")
p.add_argument("--steps", type=int, default=150)
p.add_argument("--threads", type=int, default=2)
p.add_argument("--repeats", type=int, default=3)
p.add_argument("--torch-script", default="../shared/bench/torch_ptb_lm.py")
p.add_argument("--firth", help="a built firth binary (default: build target/release/firth)")
p.add_argument("--gemm-peak", help="a built gemm_peak example (default: build it)")
a = p.parse_args()

def sh(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw).stdout

if not a.firth:
    sh(["cargo", "build", "--release", "-q", "-p", "firth-cli"])
    a.firth = "target/release/firth"
if not a.gemm_peak:
    sh(["cargo", "build", "--release", "-q", "-p", "firth-nn", "--example", "gemm_peak"])
    a.gemm_peak = "target/release/examples/gemm_peak"
peak_out = sh([a.gemm_peak, str(a.threads)])
peak = float(re.search(r"sgemm_peak_gflops ([\d.]+)", peak_out).group(1))

tmp = tempfile.mkdtemp(prefix="firth-bench-lm-")
small_valid = os.path.join(tmp, "valid.txt")
with open(os.path.join(a.ptb, "ptb.valid.txt")) as f, open(small_valid, "w") as g:
    g.writelines(f.readlines()[:100])

def firth_once():
    out = os.path.join(tmp, "run")
    shutil.rmtree(out, ignore_errors=True)
    s = json.loads(sh([a.firth, "lm", "train", "--preset", "ptb-small",
                       "--train", os.path.join(a.ptb, "ptb.train.txt"), "--valid", small_valid,
                       "--out", out, "--max-steps", str(a.steps), "--threads", str(a.threads),
                       "--json", "--quiet"]))
    return s["train_tokens_per_second"], s["train_gflops_per_second"] / s["train_tokens_per_second"]

def torch_once():
    if not os.path.exists(a.torch_script):
        return None
    try:
        out = sh([sys.executable, a.torch_script, a.ptb, "--epochs", "1", "--threads", str(a.threads),
                  "--max-batches", str(a.steps)])
    except subprocess.CalledProcessError as e:
        print("PyTorch run failed:", e.stderr.strip().splitlines()[-1:], file=sys.stderr)
        return None
    return float(re.search(r"tok/s (\d+)", out).group(1))

firth, torch = [], []
gflop_per_token = None
for r in range(a.repeats):
    t, gflop_per_token = firth_once()
    firth.append(t)
    tt = torch_once()
    if tt is not None:
        torch.append(tt)
    print(f"round {r + 1}: firth {t:,.0f} tok/s" + (f", PyTorch {tt:,.0f} tok/s" if tt else ""), file=sys.stderr)

f = statistics.median(firth)
print(f"\nPTB, Zaremba small (2x200 LSTM, bptt 20, batch 20), {a.steps} training steps, {a.threads} threads, "
      f"median of {a.repeats}; sgemm peak here {peak:.1f} GFLOP/s ({a.threads} threads)\n")
print(f"| tool | train tokens/s | GFLOP/s | % of sgemm peak |")
print(f"|---|---|---|---|")
print(f"| firth | {f:,.0f} | {f * gflop_per_token:.1f} | {100 * f * gflop_per_token / peak:.0f}% |")
if torch:
    t = statistics.median(torch)
    print(f"| PyTorch {a.threads}T | {t:,.0f} | {t * gflop_per_token:.1f} | {100 * t * gflop_per_token / peak:.0f}% |")
    print(f"\nfirth / PyTorch: {f / t:.2f}x")
else:
    print("\nPyTorch: not run (install torch, or pass --torch-script)")
shutil.rmtree(tmp, ignore_errors=True)
