#!/usr/bin/env python3
"""Side-by-side tagger throughput: firth vs PyTorch, the same BiLSTM tagger on CPU.

Model (../shared/bench/torch_tagger.py, the PyTorch baseline): word embeddings 100 (lower-cased
words), one bidirectional LSTM layer of 200 units each way, dropout 0.5, linear + softmax,
Adam lr 1e-3, batch 32 sentences, gradient-norm clip 5, no character features. firth runs
`firth tag train` with the same settings. Both train one epoch on the first --sentences
sentences of UD English EWT (UPOS word<TAB>tag files) and then tag the dev set; the tools
alternate (A B A B ...) so drift in machine load hits both. Prints the median sentences/s of
each in training and prediction, their ratios, and the load average before and after.

Usage (from the repository root): python3 bench/tagger/run.py [--data DIR] [--sentences N]
  [--threads T] [--repeats R] [--torch-script PATH]   (torch: `pip install torch`, CPU)
"""
import argparse, csv, json, os, re, shutil, statistics, subprocess, sys, tempfile

p = argparse.ArgumentParser()
p.add_argument("--data", default="../shared/data/ud-english-ewt/pos-tsv-ud2.1-2017")
p.add_argument("--sentences", type=int, default=4000)
p.add_argument("--threads", type=int, default=2)
p.add_argument("--repeats", type=int, default=3)
p.add_argument("--torch-script", default="../shared/bench/torch_tagger.py")
a = p.parse_args()

def sh(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw).stdout

sh(["cargo", "build", "--release", "-q", "-p", "firth-cli"])
tmp = tempfile.mkdtemp(prefix="firth-bench-tagger-")
train = os.path.join(tmp, "train.tsv")
with open(os.path.join(a.data, "en-ud-train.upos.tsv")) as f, open(train, "w") as g:
    n = 0
    for line in f:
        g.write(line)
        if not line.strip():
            n += 1
            if n >= a.sentences:
                break
dev = os.path.join(a.data, "en-ud-dev.upos.tsv")
test = os.path.join(a.data, "en-ud-test.upos.tsv")

def firth_once():
    out = os.path.join(tmp, "run")
    shutil.rmtree(out, ignore_errors=True)
    sh(["target/release/firth", "tag", "train", "--train", train, "--dev", dev, "--out", out,
        "--emb", "100", "--hidden", "200", "--layers", "1", "--char-dim", "0", "--softmax",
        "--dropout", "0.5", "--optim", "adam", "--lr", "1e-3", "--batch", "32", "--clip", "5",
        "--epochs", "1", "--threads", str(a.threads), "--json", "--quiet"])
    with open(os.path.join(out, "metrics.csv")) as f:
        row = list(csv.DictReader(f))[-1]
    return float(row["items_per_second"]), float(row["predict_items_per_second"]), float(row["valid_accuracy"])

def torch_once():
    if not os.path.exists(a.torch_script):
        return None
    try:
        out = sh([sys.executable, a.torch_script, train, dev, test, "--epochs", "1",
                  "--threads", str(a.threads)])
    except subprocess.CalledProcessError as e:
        print("PyTorch run failed:", e.stderr.strip().splitlines()[-1:], file=sys.stderr)
        return None
    m = re.search(r"train_sent/s (\d+) predict_sent/s (\d+) dev_acc ([\d.]+)", out)
    return float(m.group(1)), float(m.group(2)), float(m.group(3))

load_before = os.getloadavg()
firth, torch = [], []
for r in range(a.repeats):
    f = firth_once()
    firth.append(f)
    t = torch_once()
    if t is not None:
        torch.append(t)
    print(f"round {r + 1}: firth train {f[0]:.0f} / predict {f[1]:.0f} sent/s (dev {f[2]:.2f}%)"
          + (f"; PyTorch train {t[0]:.0f} / predict {t[1]:.0f} sent/s (dev {t[2]:.2f}%)" if t else ""),
          file=sys.stderr)
load_after = os.getloadavg()

med = lambda xs, i: statistics.median(x[i] for x in xs)
print(f"\nBiLSTM tagger (emb 100, 1x200 per direction, softmax, Adam, batch 32), one epoch on "
      f"{a.sentences} EWT sentences, predict = EWT dev; {a.threads} threads, median of {a.repeats}; "
      f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f} ({os.cpu_count()} CPUs)\n")
print("| tool | train sentences/s | predict sentences/s | dev accuracy after 1 epoch |")
print("|---|---|---|---|")
print(f"| firth | {med(firth, 0):,.0f} | {med(firth, 1):,.0f} | {med(firth, 2):.2f}% |")
if torch:
    print(f"| PyTorch {a.threads}T | {med(torch, 0):,.0f} | {med(torch, 1):,.0f} | {med(torch, 2):.2f}% |")
    print(f"\nfirth / PyTorch: training {med(firth, 0) / med(torch, 0):.2f}x, "
          f"prediction {med(firth, 1) / med(torch, 1):.2f}x")
else:
    print("\nPyTorch: not run (install torch, or pass --torch-script)")
shutil.rmtree(tmp, ignore_errors=True)
