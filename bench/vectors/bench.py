#!/usr/bin/env python3
"""Side-by-side word-vector bench: firth vs word2vec C (and fastText, GloVe C when available).

Every tool gets the same corpus, settings and thread count, in one run; the table prints wall
time, words/s (corpus words in the vocabulary x epochs / wall), peak RSS, analogy accuracy
(questions-words, restrict 30000, 3CosAdd) and WS353 / SimLex Spearman, plus firth/peer ratios.
Each firth vector file is scored by `firth vectors eval` and by gensim, and the two must agree.

Usage:
  python3 bench/vectors/bench.py --corpus FILE [--runs sg,cbow,fasttext,glove] [--threads 2]
         [--epochs 5] [--firth target/release/firth] [--out /tmp/vbench]
Peers: word2vec C from `pip install word2vec` (found on PATH or via $WORD2VEC_BIN), fastText
from `pip install fasttext`, GloVe C binaries from $GLOVE_BIN (skipped with a message if unset).
"""
import argparse, json, os, re, shutil, subprocess, sys, time

EVAL = "../shared/data/wordvec-eval"
CPU = [0.0]


def timed(cmd, log, stdin=None, stdout=None):
    """Runs cmd under /usr/bin/time -v; returns (wall seconds, peak RSS bytes). The CPU seconds
    (user + sys) of the last command are kept in CPU[0]: on a shared machine they are the steadier
    measure of work done, so the table shows both."""
    tfile = log + ".time"
    t0 = time.time()
    with open(log, "w") as lf:
        r = subprocess.run(["/usr/bin/time", "-v", "-o", tfile] + cmd, stdin=stdin,
                           stdout=stdout or lf, stderr=lf)
    wall = time.time() - t0
    if r.returncode != 0:
        sys.exit(f"failed ({r.returncode}): {' '.join(cmd)}; see {log}")
    rss = 0
    cpu = 0.0
    for line in open(tfile):
        if "Maximum resident set size" in line:
            rss = int(line.split()[-1]) * 1024
        if "User time (seconds)" in line or "System time (seconds)" in line:
            cpu += float(line.split()[-1])
    CPU[0] = cpu
    load("after " + os.path.basename(cmd[0]) + (" " + cmd[1] if len(cmd) > 1 and not cmd[1].startswith("-") else ""))
    return wall, rss


def load(when):
    """Prints the load average: on a shared machine every timing needs it next to it."""
    print(f"[{when}] {time.strftime('%H:%M:%S')} load average {' '.join(open('/proc/loadavg').read().split()[:3])}",
          flush=True)


def gensim_scores(path, binary, no_header=False):
    from gensim.models import KeyedVectors
    kv = KeyedVectors.load_word2vec_format(path, binary=binary, no_header=no_header)
    acc, _ = kv.evaluate_word_analogies(f"{EVAL}/questions-words.txt", restrict_vocab=30000)
    ws = kv.evaluate_word_pairs(f"{EVAL}/wordsim353.tsv")[1][0]
    sl = kv.evaluate_word_pairs(f"{EVAL}/simlex999.txt")[1][0]
    return {"analogy": acc * 100, "ws353": ws, "simlex": sl}


def firth_scores(firth, path):
    out = subprocess.run([firth, "vectors", "eval", path, "--analogy", f"{EVAL}/questions-words.txt",
                          "--similarity", f"{EVAL}/wordsim353.tsv", "--similarity",
                          f"{EVAL}/simlex999.txt", "--restrict", "30000", "--json"],
                         check=True, capture_output=True, text=True).stdout
    j = json.loads(out)
    return {"analogy": j["analogy_accuracy"], "ws353": j["similarity"][0]["spearman"],
            "simlex": j["similarity"][1]["spearman"], "coverage": j["analogy_coverage"]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--runs", default="sg,cbow")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--firth", default="target/release/firth")
    ap.add_argument("--out", default="/tmp/vbench")
    ap.add_argument("--seed", type=int, default=1,
                    help="seed for firth (word2vec and glove) and GloVe C's shuffle/glove; word2vec C and "
                         "fastText keep their fixed defaults")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    firth = os.path.abspath(a.firth)
    w2v = os.environ.get("WORD2VEC_BIN") or shutil.which("word2vec")
    T, E = str(a.threads), str(a.epochs)
    rows = []  # (label, wall, cpu, words/s, rss, scores)
    checks = []

    def row(label, wall, wps, rss, sc, cpu=None):
        cpu = CPU[0] if cpu is None else cpu
        rows.append((label, wall, cpu, wps, rss, sc))
        print(f"{label:<22} wall {wall:8.1f}s  cpu {cpu:8.1f}s  {wps/1e3:8.0f}k words/s  rss {rss/2**20:7.0f} MiB  "
              f"analogy {sc['analogy']:6.2f}  ws353 {sc['ws353']:.3f}  simlex {sc['simlex']:.3f}",
              flush=True)

    load("start")
    for run in a.runs.split(","):
        if run in ("sg", "cbow"):
            cbow = run == "cbow"
            alpha = "0.05" if cbow else "0.025"
            fout = f"{a.out}/firth-{run}.bin"
            wall, rss = timed([firth, "vectors", "word2vec", "--input", a.corpus, "--output", fout,
                               "--model", "cbow" if cbow else "skipgram", "--dim", "100",
                               "--window", "5", "--negative", "5", "--sample", "1e-4",
                               "--min-count", "5", "--alpha", alpha, "--epochs", E,
                               "--threads", T, "--seed", str(a.seed), "--json"], f"{a.out}/firth-{run}.log",
                              stdout=open(f"{a.out}/firth-{run}.json", "w"))
            j = json.load(open(f"{a.out}/firth-{run}.json"))
            words = j["words_processed"]
            fcpu = CPU[0]
            fs = firth_scores(firth, fout)
            gs = gensim_scores(fout, True)
            checks.append((fout, fs, gs))
            row(f"firth {run}", wall, words / wall, rss, fs, fcpu)
            if w2v:
                cout = f"{a.out}/w2vc-{run}.bin"
                cwall, crss = timed([w2v, "-train", a.corpus, "-output", cout, "-cbow",
                                     "1" if cbow else "0", "-size", "100", "-window", "5",
                                     "-negative", "5", "-hs", "0", "-sample", "1e-4",
                                     "-min-count", "5", "-alpha", alpha, "-iter", E,
                                     "-threads", T, "-binary", "1"], f"{a.out}/w2vc-{run}.log")
                cs = gensim_scores(cout, True)
                row(f"word2vec C {run}", cwall, words / cwall, crss, cs)
                print(f"  ratio firth/C: speed {cwall / wall:.2f}x by wall, {CPU[0] / fcpu:.2f}x by CPU time, analogy {fs['analogy'] - cs['analogy']:+.2f} pt, "
                      f"ws353 {fs['ws353'] - cs['ws353']:+.3f}, simlex {fs['simlex'] - cs['simlex']:+.3f}",
                      flush=True)
            else:
                print("word2vec C not found (pip install word2vec, or set WORD2VEC_BIN)")
        elif run == "fasttext":
            try:
                import fasttext  # noqa: F401
            except ImportError:
                print("fastText not installed (pip install fasttext): skipped")
                continue
            vec = f"{a.out}/fasttext-sg.vec"
            code = ("import fasttext,sys\n"
                    f"m=fasttext.train_unsupervised({a.corpus!r},model='skipgram',dim=100,ws=5,epoch={E},"
                    f"minCount=5,neg=5,minn=0,maxn=0,t=1e-4,lr=0.025,thread={T},verbose=0)\n"
                    f"f=open({vec!r},'w');ws=m.words;f.write(f'{{len(ws)}} 100\\n')\n"
                    "for w in ws: f.write(w+' '+' '.join('%.6f'%x for x in m.get_word_vector(w))+'\\n')\n")
            wall, rss = timed([sys.executable, "-c", code], f"{a.out}/fasttext.log")
            fs = gensim_scores(vec, False)
            if os.path.exists(f"{a.out}/firth-sg.json"):
                words = json.load(open(f"{a.out}/firth-sg.json"))["words_processed"]
            else:  # corpus words of the min-count-5 vocabulary x epochs, as firth counts them
                counts = {}
                with open(a.corpus, "rb") as f:
                    for line in f:
                        for w in line.split():
                            counts[w] = counts.get(w, 0) + 1
                words = sum(c for c in counts.values() if c >= 5) * a.epochs
            row("fastText sg (maxn 0)", wall, words / wall, rss, fs)
        elif run == "glove":
            fout = f"{a.out}/firth-glove.bin"
            wall, rss = timed([firth, "vectors", "glove", "--input", a.corpus, "--output", fout,
                               "--dim", "50", "--window", "15", "--x-max", "10", "--epochs", "15",
                               "--min-count", "5", "--memory", "4.0", "--threads", T, "--seed", str(a.seed), "--json"],
                              f"{a.out}/firth-glove.log", stdout=open(f"{a.out}/firth-glove.json", "w"))
            j = json.load(open(f"{a.out}/firth-glove.json"))
            fcpu = CPU[0]
            fs = firth_scores(firth, fout)
            checks.append((fout, fs, gensim_scores(fout, True)))
            row("firth glove", wall, 0, rss, fs, fcpu)
            print("  firth stages: vocab %.1fs cooccur %.1fs shuffle %.1fs train %.1fs; %d non-zeros" %
                  (j["vocab_seconds"], j["cooccur_seconds"], j["shuffle_seconds"], j["train_seconds"], j["nonzeros"]))
            print("  firth cost per iteration: " + " ".join("%.6f" % c for c in j.get("epoch_costs", [])))
            gb = os.environ.get("GLOVE_BIN")
            if not gb:
                print("GloVe C: $GLOVE_BIN is not set (build stanfordnlp/GloVe outside the repo): skipped")
                continue
            d = a.out
            walls, rsss, cpus = [], [], []
            for name, cmd, sin, sout in [
                ("vocab_count", [f"{gb}/vocab_count", "-min-count", "5", "-verbose", "0"], a.corpus, f"{d}/gv-vocab.txt"),
                ("cooccur", [f"{gb}/cooccur", "-memory", "4.0", "-vocab-file", f"{d}/gv-vocab.txt", "-verbose", "0",
                             "-window-size", "15", "-overflow-file", f"{d}/gv-overflow"], a.corpus, f"{d}/gv-cooc.bin"),
                ("shuffle", [f"{gb}/shuffle", "-memory", "4.0", "-verbose", "0", "-seed", str(a.seed),
                             "-temp-file", f"{d}/gv-temp-shuffle"], f"{d}/gv-cooc.bin", f"{d}/gv-shuf.bin"),
                ("glove", [f"{gb}/glove", "-save-file", f"{d}/gv-vectors", "-threads", T, "-input-file",
                           f"{d}/gv-shuf.bin", "-x-max", "10", "-iter", "15", "-vector-size", "50", "-binary", "0",
                           "-vocab-file", f"{d}/gv-vocab.txt", "-verbose", "2", "-seed", str(a.seed)], None, None),
            ]:
                w, r = timed(cmd, f"{d}/gv-{name}.log", stdin=open(sin) if sin else None,
                             stdout=open(sout, "w") if sout else None)
                walls.append(w)
                rsss.append(r)
                cpus.append(CPU[0])
            gs = gensim_scores(f"{d}/gv-vectors.txt", False, no_header=True)
            row("GloVe C", sum(walls), 0, max(rsss), gs, sum(cpus))
            print("  GloVe C stages: vocab %.1fs cooccur %.1fs shuffle %.1fs train %.1fs; %d non-zeros" %
                  (*walls, os.path.getsize(f"{d}/gv-cooc.bin") // 16))
            costs = re.findall(r"iter: \d+, cost: ([0-9.]+)", open(f"{d}/gv-glove.log").read())
            print("  GloVe C cost per iteration: " + " ".join(costs))
            print(f"  ratio firth/GloVe C: wall {wall / sum(walls):.2f}x, CPU {fcpu / sum(cpus):.2f}x, analogy {fs['analogy'] - gs['analogy']:+.2f} pt")
    print("\n| run | wall s | CPU s | words/s (wall) | peak RSS MiB | analogy % | WS353 | SimLex |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for label, wall, cpu, wps, rss, sc in rows:
        print(f"| {label} | {wall:.1f} | {cpu:.1f} | {wps/1e3:.0f}k | {rss/2**20:.0f} | {sc['analogy']:.2f} | "
              f"{sc['ws353']:.3f} | {sc['simlex']:.3f} |")
    print("\nfirth eval vs gensim on the same files:")
    ok = True
    for f, fs, gs in checks:
        same = (abs(fs["analogy"] - gs["analogy"]) < 0.005 and abs(fs["ws353"] - gs["ws353"]) < 1e-4
                and abs(fs["simlex"] - gs["simlex"]) < 1e-4)
        ok &= same
        print(f"  {f}: firth {fs['analogy']:.4f}/{fs['ws353']:.5f}/{fs['simlex']:.5f} gensim "
              f"{gs['analogy']:.4f}/{gs['ws353']:.5f}/{gs['simlex']:.5f} {'EQUAL' if same else 'DIFFERENT'}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
