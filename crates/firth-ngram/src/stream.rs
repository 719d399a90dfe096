//! External-memory Kneser-Ney: the same model as [`crate::kn`], estimated order by order from
//! sorted files on disk, so that a build stays inside its `--memory` budget (KenLM's design).
//!
//! What is on disk, and when (`T` = the temporary directory; every file is removed when it is
//! no longer needed, and on errors):
//!
//! 1. **Counting** ([`crate::count::count_runs`]): sorted runs of `(N-gram key, count)`, or one
//!    run in memory when the input fits the counting buffer.
//! 2. **Adjusting** ([`crate::count::Adjuster`]): the merged runs stream through the adjust pass,
//!    which writes each order n >= 2 to its own file `order n` of `(key, adjusted, raw)`
//!    records in suffix order (32 bytes each); unigrams (one per word type) stay in memory. The
//!    discount statistics t_1..t_4 and the number of kept n-grams per order are counted on the
//!    way, so the discounts are known before any probability is computed.
//! 3. **Order n, context pass.** `order n` is re-sorted (a [`Sorter`], runs spilled to `T`) by
//!    *context*: the key rotated so that the context `w1 .. w_{n-1}` is the high part. All
//!    n-grams with one context are then adjacent, and the contexts come in suffix order of the
//!    (n-1)-grams. For each context h the accumulator gives `sum_x a(hx)`, `N_1, N_2, N_3+` and
//!    the pruned mass, hence `gamma(h)`, written to `gamma n-1` as `(h, gamma)`; each kept n-gram
//!    `hw` gets `u = (a - D(a)) / sum_x a(hx)` and goes with `(u, gamma(h))` into a second
//!    sorter, back in suffix order.
//! 4. **Order n, suffix pass.** In suffix order the suffix `w2 .. wn` of successive n-grams
//!    never decreases, so a merge join with `prob n-1` (the (n-1)-grams' probabilities, also in
//!    suffix order; an array for n = 2) gives `p(w | h') ` and `p = u + gamma(h) p(w | h')`,
//!    written to `prob n`. Then `prob n-1` joined with `gamma n-1` is order n-1's final
//!    `(key, log10 p, log10 backoff)` file; `prob n-1` and `gamma n-1` are removed.
//! 5. **Writing.** The ARPA file is written from the unigram array and the final files; the
//!    binary file is written section by section, building one order's hash table at a time
//!    (inserted in suffix order, so the bytes equal the in-memory build's).
//!
//! Every `f32` operation is the one [`crate::kn`] performs, in the same order, so the model is
//! bit-for-bit the in-memory one (tested by comparing ARPA and binary files byte for byte).

use crate::arpa::{push_line, push_words};
use crate::count::{Adjusted, Adjuster, OrderCounts, Packing, Runs};
use crate::extsort::{RecReader, RecWriter, Sorter, TempFile};
use crate::kn::{self, Acc, BuildOptions, Discount};
use crate::model::{Model, ProbBackoff, TableBuilder};
use crate::util::write_atomic;
use crate::{Error, Result, EOS, UNK};
use std::io::Write;
use std::path::Path;

/// Where a build writes its model.
#[derive(Clone, Copy, Debug, Default)]
pub struct Outputs<'a> {
    pub arpa: Option<&'a Path>,
    pub binary: Option<&'a Path>,
    /// Binary-format flags (e.g. [`crate::model::FLAG_CHARS`]).
    pub flags: u64,
}

/// What a build reports besides the files it wrote.
#[derive(Clone, Debug)]
pub struct Summary {
    /// Kept n-grams per order.
    pub counts: Vec<u64>,
    /// Discounts per order (Kneser-Ney only).
    pub discounts: Vec<Discount>,
    /// Adjusted-count statistics t_1..t_4 per order.
    pub stats: Vec<[u64; 5]>,
    /// The build streamed through temporary files instead of holding the model in memory.
    pub external: bool,
    /// Sorted runs counting wrote to disk (0 when the text fit in the counting buffer).
    pub count_runs: usize,
}

/// A final per-order record: key, log10 prob bits, log10 backoff bits.
pub(crate) type Final = (u128, u32, u32);

/// Estimates the Kneser-Ney model of the counted `runs` through files in `opts.temp_dir` and
/// writes it to `out`. `memory` is the budget for sort buffers.
#[allow(clippy::too_many_arguments)]
pub(crate) fn estimate(
    corpus_words: &[String],
    runs: Runs,
    pack: &Packing,
    thresholds: &[u64],
    pruned_words: Option<&[bool]>,
    opts: &BuildOptions,
    memory: u64,
    out: &Outputs,
    progress: &mut dyn FnMut(&str),
) -> Result<Summary> {
    let n_max = pack.order;
    let b = pack.bits as usize;
    let dir = opts.temp_dir.as_path();
    let count_runs = runs.spilled();

    // Step 2: adjusted counts, per order to its file; statistics and kept counts on the way.
    progress("adjusting counts (streaming)");
    let mut stats = vec![[0u64; 5]; n_max];
    let mut kept = vec![0u64; n_max];
    let mut unigrams_oc = OrderCounts::default();
    let mut marked1 = Vec::new();
    let mut files: Vec<Option<RecWriter<(u128, u64, u64)>>> = vec![None];
    for n in 2..=n_max {
        files.push(Some(RecWriter::create(dir, &format!("order{n}"))?));
    }
    {
        let mut emit = |g: Adjusted| -> Result<()> {
            let i = g.order - 1;
            let st = if g.at_end { g.raw } else { g.adjusted };
            if st < 5 {
                stats[i][st as usize] += 1;
            }
            let pruned = kn::is_pruned(g.key, g.order, g.raw, thresholds[i], pack, pruned_words);
            if !pruned {
                kept[i] += 1;
            }
            if g.order == 1 {
                unigrams_oc.keys.push(g.key);
                unigrams_oc.adjusted.push(g.adjusted);
                marked1.push(pruned);
                Ok(())
            } else {
                files[i]
                    .as_mut()
                    .expect("one writer per order")
                    .push(&(g.key, g.adjusted, g.raw))
            }
        };
        let mut stream = runs.stream(dir, memory)?;
        let mut a = Adjuster::new(pack);
        a.start(&mut emit)?;
        while let Some((k, c)) = stream.next()? {
            a.push(k, c, &mut emit)?;
        }
        a.finish(&mut emit)?;
    }
    let mut order_files: Vec<Option<TempFile>> = vec![None];
    for w in files.into_iter().skip(1) {
        order_files.push(Some(w.expect("one writer per order").finish()?));
    }
    let discounts = kn::discounts_for(&stats, opts)?;

    // Unigrams in memory.
    let (remap, words) = kn::vocabulary(corpus_words, &unigrams_oc, &marked1);
    let mut unigrams = vec![
        ProbBackoff {
            prob: 0.0,
            backoff: 1.0
        };
        words.len()
    ];
    kn::kn_unigrams(&unigrams_oc, &marked1, discounts[0], &remap, &mut unigrams);
    let unigram_keys: Vec<u128> = unigrams_oc
        .keys
        .iter()
        .zip(&marked1)
        .filter(|(_, &m)| !m)
        .map(|(&k, _)| k)
        .collect();
    drop(unigrams_oc);
    drop(marked1);
    let mut counts = kept.clone();
    counts[0] = words.len() as u64;

    // Steps 3 and 4, order by order. Two sort buffers can be alive at once (the context sort's
    // in-memory run while the suffix sort fills), so each gets a third of the budget.
    let sort_mem = memory / 3;
    let mut lower: Option<TempFile> = None; // prob n-1 (linear), n-1 >= 2
    let mut finals: Vec<Option<TempFile>> = (0..=n_max).map(|_| None).collect();
    for n in 2..=n_max {
        progress(&format!("estimating {n}-grams (streaming)"));
        let d = discounts[n - 1];
        let file = order_files[n - 1].take().expect("each order once");
        let low_bits = b * (n - 1);
        let low = (1u128 << low_bits) - 1;
        let wmask = pack.mask();
        // Context pass.
        let mut by_ctx: Sorter<(u128, u64, u64)> = Sorter::new(dir, "context", sort_mem);
        {
            let mut r = RecReader::<(u128, u64, u64)>::open(&file)?;
            while let Some((k, adj, raw)) = r.next()? {
                let m = kn::is_pruned(k, n, raw, thresholds[n - 1], pack, pruned_words);
                by_ctx.push((((k & low) << b) | (k >> low_bits), adj, m as u64))?;
            }
        }
        drop(file);
        let mut sorted = by_ctx.finish()?;
        let mut by_suffix: Sorter<(u128, u32, u32)> = Sorter::new(dir, "suffix", sort_mem);
        let mut gammas = RecWriter::<(u128, u32)>::create(dir, &format!("gamma{}", n - 1))?;
        let mut group: Vec<(u128, u64, bool)> = Vec::new();
        let mut flush = |group: &mut Vec<(u128, u64, bool)>,
                         by_suffix: &mut Sorter<(u128, u32, u32)>|
         -> Result<()> {
            let Some(&(ck0, _, _)) = group.first() else {
                return Ok(());
            };
            let ctx = ck0 >> b;
            let mut acc = Acc::default();
            for &(_, adj, m) in group.iter() {
                acc.add(adj, m);
            }
            let gamma = if acc.denominator > 0 {
                let g = acc.gamma(&d);
                gammas.push(&(ctx, g.to_bits()))?;
                g
            } else {
                1.0
            };
            let den = acc.denominator as f32;
            for &(ck, adj, m) in group.iter() {
                if !m {
                    let key = ((ck & wmask) << low_bits) | (ck >> b);
                    let u = d.apply(adj) / den;
                    by_suffix.push((key, u.to_bits(), gamma.to_bits()))?;
                }
            }
            group.clear();
            Ok(())
        };
        while let Some((ck, adj, m)) = sorted.next()? {
            if let Some(&(c0, _, _)) = group.first() {
                if c0 >> b != ck >> b {
                    flush(&mut group, &mut by_suffix)?;
                }
            }
            group.push((ck, adj, m != 0));
        }
        flush(&mut group, &mut by_suffix)?;
        drop(sorted);
        let gammas = gammas.finish()?;

        // The gammas complete order n-1.
        if n == 2 {
            let mut r = RecReader::<(u128, u32)>::open(&gammas)?;
            while let Some((ctx, g)) = r.next()? {
                let id = remap[ctx as usize];
                if id != u32::MAX {
                    unigrams[id as usize].backoff = f32::from_bits(g);
                }
            }
        }

        // Suffix pass: p = u + gamma(h) p(w | h').
        let mut sorted = by_suffix.finish()?;
        let mut probs = RecWriter::<(u128, u32)>::create(dir, &format!("prob{n}"))?;
        let mut lr = match &lower {
            Some(f) => Some(RecReader::<(u128, u32)>::open(f)?),
            None => None,
        };
        let mut cur: Option<(u128, u32)> = None;
        while let Some((key, ub, gb)) = sorted.next()? {
            let sfx = key >> b;
            let sp = match &mut lr {
                None => unigrams[remap[sfx as usize] as usize].prob,
                Some(r) => {
                    while cur.is_none_or(|(k, _)| k < sfx) {
                        cur = r.next()?;
                        if cur.is_none() {
                            break;
                        }
                    }
                    match cur {
                        Some((k, p)) if k == sfx => f32::from_bits(p),
                        _ => {
                            return Err(Error::Config(format!(
                            "internal error: the suffix of a kept {n}-gram is not a kept {}-gram",
                            n - 1
                        )))
                        }
                    }
                }
            };
            let p = f32::from_bits(ub) + f32::from_bits(gb) * sp;
            probs.push(&(key, p.to_bits()))?;
        }
        drop(sorted);
        drop(lr);
        let probs = probs.finish()?;
        if let Some(pl) = lower.take() {
            finals[n - 1] = Some(finish_order(pack, n - 1, n_max, &pl, Some(&gammas))?);
        }
        drop(gammas);
        lower = Some(probs);
    }
    if let Some(pl) = lower.take() {
        finals[n_max] = Some(finish_order(pack, n_max, n_max, &pl, None)?);
    }
    kn::kn_unigrams_log(&mut unigrams, n_max);

    // Step 5: the outputs.
    if let Some(p) = out.arpa {
        progress("writing ARPA");
        write_arpa_streamed(
            p,
            pack,
            corpus_words,
            &counts,
            &unigram_keys,
            &remap,
            &unigrams,
            &finals,
        )?;
    }
    if let Some(p) = out.binary {
        progress("writing binary");
        Model::write_binary_streamed(p, &words, &unigrams, &counts, out.flags, &mut |n| {
            let f = finals[n].as_ref().expect("a final file per order");
            let mut t = TableBuilder::new(counts[n - 1] as usize);
            let mut r = RecReader::<Final>::open(f)?;
            // Inserts in file (suffix) order, as the in-memory build does, so the slots come
            // out the same; the home slot of the insert 8 ahead is prefetched.
            const BATCH: usize = 4096;
            let mut batch: Vec<(u64, u32, u32)> = Vec::with_capacity(BATCH);
            loop {
                batch.clear();
                while batch.len() < BATCH {
                    match r.next()? {
                        Some((key, p, bo)) => {
                            batch.push((kn::key_hash(pack, &remap, key, n, 0, n), p, bo))
                        }
                        None => break,
                    }
                }
                if batch.is_empty() {
                    break;
                }
                for (j, &(h, p, bo)) in batch.iter().enumerate() {
                    if let Some(&(ahead, _, _)) = batch.get(j + 8) {
                        t.prefetch(ahead);
                    }
                    let (slot, _) = t.insert(h);
                    t.slots[slot].prob = f32::from_bits(p);
                    t.slots[slot].backoff = f32::from_bits(bo);
                }
            }
            Ok(t.slots)
        })?;
    }
    Ok(Summary {
        counts,
        discounts,
        stats,
        external: true,
        count_runs,
    })
}

/// Order n's final records: log10 of its probabilities (`prob n`), and log10 of the gammas of
/// the n-grams that are contexts (`gamma n`, from order n+1's context pass); 0 for the top order
/// and for n-grams ending in `</s>` or `<unk>`, which are never contexts.
fn finish_order(
    pack: &Packing,
    n: usize,
    n_max: usize,
    probs: &TempFile,
    gammas: Option<&TempFile>,
) -> Result<TempFile> {
    let dir = probs.path.parent().unwrap_or(Path::new("."));
    let mut w = RecWriter::<Final>::create(dir, &format!("final{n}"))?;
    let mut pr = RecReader::<(u128, u32)>::open(probs)?;
    let mut gr = match gammas {
        Some(g) => Some(RecReader::<(u128, u32)>::open(g)?),
        None => None,
    };
    let mut cur: Option<(u128, u32)> = None;
    while let Some((key, p)) = pr.next()? {
        let prob = kn::kn_log(f32::from_bits(p));
        let mut backoff = match &mut gr {
            None => 0.0,
            Some(r) => {
                while cur.is_none_or(|(k, _)| k < key) {
                    cur = r.next()?;
                    if cur.is_none() {
                        break;
                    }
                }
                match cur {
                    Some((k, g)) if k == key => f32::from_bits(g).log10(),
                    _ => 1.0f32.log10(),
                }
            }
        };
        if n == n_max {
            backoff = 0.0;
        }
        let last = pack.rev_word(key, n, 0);
        if last == EOS || last == UNK {
            backoff = 0.0;
        }
        w.push(&(key, prob.to_bits(), backoff.to_bits()))?;
    }
    w.finish()
}

/// Writes the model that this module estimated as ARPA, byte for byte what
/// [`crate::kn::Built::write_arpa`] writes for the same model: unigrams from memory (`unigram_keys` are the kept
/// corpus ids, `unigrams` indexed by model id, log10), higher orders from the final files.
#[allow(clippy::too_many_arguments)]
pub(crate) fn write_arpa_streamed(
    path: &Path,
    pack: &crate::count::Packing,
    corpus_words: &[String],
    counts: &[u64],
    unigram_keys: &[u128],
    remap: &[u32],
    unigrams: &[ProbBackoff],
    finals: &[Option<crate::extsort::TempFile>],
) -> Result<()> {
    use crate::extsort::RecReader;
    use rayon::prelude::*;
    let n_max = pack.order;
    let mut inner: Option<Error> = None;
    let res = write_atomic(path, |w| {
        writeln!(w, "\\data\\")?;
        for (i, c) in counts.iter().enumerate() {
            writeln!(w, "ngram {}={}", i + 1, c)?;
        }
        writeln!(w)?;
        writeln!(w, "\\1-grams:")?;
        let mut out = String::new();
        let mut fb = zmij::Buffer::new();
        for &k in unigram_keys {
            let e = unigrams[remap[k as usize] as usize];
            out.clear();
            push_line(&mut out, &mut fb, e, n_max > 1, |out| {
                out.push_str(&corpus_words[k as usize])
            });
            w.write_all(out.as_bytes())?;
        }
        writeln!(w)?;
        const BLOCK: usize = 1 << 15;
        for n in 2..=n_max {
            writeln!(w, "\\{n}-grams:")?;
            let f = finals[n].as_ref().expect("a final file per order");
            let mut r = match RecReader::<Final>::open(f) {
                Ok(r) => r,
                Err(e) => {
                    inner = Some(e);
                    return Err(std::io::Error::other("read"));
                }
            };
            let mut batch = Vec::with_capacity(BLOCK * 16);
            loop {
                batch.clear();
                while batch.len() < BLOCK * 16 {
                    match r.next() {
                        Ok(Some(x)) => batch.push(x),
                        Ok(None) => break,
                        Err(e) => {
                            inner = Some(e);
                            return Err(std::io::Error::other("read"));
                        }
                    }
                }
                if batch.is_empty() {
                    break;
                }
                let texts: Vec<String> = batch
                    .par_chunks(BLOCK)
                    .map(|recs| {
                        let mut out = String::with_capacity(recs.len() * (16 + 8 * n));
                        let mut fb = zmij::Buffer::new();
                        for &(k, p, b) in recs {
                            let e = ProbBackoff {
                                prob: f32::from_bits(p),
                                backoff: f32::from_bits(b),
                            };
                            push_line(&mut out, &mut fb, e, n < n_max, |out| {
                                push_words(out, pack, corpus_words, k, n)
                            });
                        }
                        out
                    })
                    .collect();
                for t in texts {
                    w.write_all(t.as_bytes())?;
                }
            }
            writeln!(w)?;
        }
        writeln!(w, "\\end\\")
    });
    match inner {
        Some(e) => Err(e),
        None => res,
    }
}
