#!/usr/bin/env python3
"""Side-by-side translator speed: firth vs PyTorch, the same attentional encoder-decoder on CPU.

Model (../shared/bench/torch_seq2seq.py, the PyTorch baseline): Multi30k de->en, word level
(training words seen at least twice), embeddings 256, one bidirectional LSTM encoder layer of
256 per direction, a decoder LSTM of 512 started from a learned bridge, Luong general attention
with padding masked, input feeding, dropout 0.3, Adam 1e-3, global-norm clip 5, batches of 64
sentence pairs bucketed by length, teacher forcing, plain cross-entropy. firth runs
`firth translate train --preset multi30k-de-en` with the preset's differences from that
switched off (`--batch-sentences 64 --label-smoothing 0 --warmup-steps 0`), so both train the
same network on the same batching. Each tool trains one epoch, then greedy-decodes
test2016 (the same 1,000 sentences, by each tool's own batching) and scores it with BLEU;
the tools alternate (A B A B ...) so drift in machine load hits both.

Prints, per tool, the median target tokens/s in training (tokens with </s>; PyTorch leaves out
its first 5 batches, firth counts all), greedy sentences/s, validation perplexity and greedy
test BLEU after the one epoch, the ratios, and the load average before and after.

Usage (from the repository root): python3 bench/translate/run.py [--data DIR] [--threads T]
  [--repeats R] [--epochs E] [--torch-script PATH]   (torch: `pip install torch sacrebleu`, CPU)
"""
import argparse, json, os, re, shutil, statistics, subprocess, sys, tempfile

p = argparse.ArgumentParser()
p.add_argument("--data", default="../shared/data/multi30k/tok")
p.add_argument("--threads", type=int, default=2)
p.add_argument("--repeats", type=int, default=2)
p.add_argument("--epochs", type=int, default=1)
p.add_argument("--torch-script", default="../shared/bench/torch_seq2seq.py")
a = p.parse_args()


def sh(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw).stdout


sh(["cargo", "build", "--release", "-q", "-p", "firth-cli"])
tmp = tempfile.mkdtemp(prefix="firth-bench-translate-")
f = lambda split, lang: os.path.join(a.data, f"{split}.lc.norm.tok.{lang}")


def firth_once():
    out = os.path.join(tmp, "run")
    shutil.rmtree(out, ignore_errors=True)
    s = json.loads(sh([
        "target/release/firth", "translate", "train", "--preset", "multi30k-de-en",
        "--train-src", f("train", "de"), "--train-tgt", f("train", "en"),
        "--valid-src", f("val", "de"), "--valid-tgt", f("val", "en"),
        "--test-src", f("test_2016_flickr", "de"), "--test-tgt", f("test_2016_flickr", "en"),
        "--out", out, "--batch-sentences", "64", "--label-smoothing", "0", "--warmup-steps", "0",
        "--plateau-decay", "1", "--max-len", "1000", "--no-valid-bleu", "--beam", "1",
        "--epochs", str(a.epochs), "--threads", str(a.threads), "--json", "--quiet"]))
    return (s["train_tokens_per_second"], s["greedy_sentences_per_second"],
            s["valid_perplexity"], s["test_bleu_greedy"])


def torch_once():
    if not os.path.exists(a.torch_script):
        return None
    try:
        out = sh([sys.executable, a.torch_script, "--data", a.data, "--epochs", str(a.epochs),
                  "--threads", str(a.threads)])
    except subprocess.CalledProcessError as e:
        print("PyTorch run failed:", e.stderr.strip().splitlines()[-1:], file=sys.stderr)
        return None
    epochs = re.findall(r"tok/s (\d+) val_ppl ([\d.]+)", out)
    rate = statistics.mean(float(t) for t, _ in epochs)
    decode = float(re.search(r"decode_sent/s (\d+)", out).group(1))
    bleu = float(re.search(r"BLEU ([\d.]+)", out).group(1))
    return rate, decode, float(epochs[-1][1]), bleu


load_before = os.getloadavg()
firth, torch = [], []
for r in range(a.repeats):
    x = firth_once()
    firth.append(x)
    t = torch_once()
    if t is not None:
        torch.append(t)
    print(f"round {r + 1}: firth {x[0]:.0f} tok/s, greedy {x[1]:.0f} sent/s, valid ppl {x[2]:.2f}, "
          f"BLEU {x[3]:.2f}" + (f"; PyTorch {t[0]:.0f} tok/s, greedy {t[1]:.0f} sent/s, valid ppl "
                                 f"{t[2]:.2f}, BLEU {t[3]:.2f}" if t else ""), file=sys.stderr)
load_after = os.getloadavg()

med = lambda xs, i: statistics.median(x[i] for x in xs)
print(f"\nAttentional encoder-decoder (emb 256, bi-LSTM 256/dir, LSTM decoder 512, general "
      f"attention, input feeding, Adam, batch 64 pairs), Multi30k de->en, {a.epochs} epoch(s), "
      f"greedy decoding of test2016; {a.threads} threads, median of {a.repeats}; load average "
      f"before {load_before[0]:.2f}, after {load_after[0]:.2f} ({os.cpu_count()} CPUs)\n")
print("| tool | train target tokens/s | greedy sentences/s | valid perplexity | test BLEU (greedy) |")
print("|---|---|---|---|---|")
print(f"| firth | {med(firth, 0):,.0f} | {med(firth, 1):,.0f} | {med(firth, 2):.2f} | {med(firth, 3):.2f} |")
if torch:
    print(f"| PyTorch {a.threads}T | {med(torch, 0):,.0f} | {med(torch, 1):,.0f} | {med(torch, 2):.2f} "
          f"| {med(torch, 3):.2f} |")
    print(f"\nfirth / PyTorch: training {med(firth, 0) / med(torch, 0):.2f}x, "
          f"greedy translation {med(firth, 1) / med(torch, 1):.2f}x")
else:
    print("\nPyTorch: not run (install torch, or pass --torch-script)")
shutil.rmtree(tmp, ignore_errors=True)
