//! Contextual word features from a forward and a backward character language model, in the
//! manner of Akbik et al. (2018, "Contextual String Embeddings"): each LM reads the whole
//! sentence as characters, and a word is represented by the forward LM's top hidden state just
//! after the word (at the following space) and the backward LM's just after reading the word
//! right to left (at the preceding space). The features are frozen: the tagger and classifier
//! read them as extra inputs and never train the LMs.
//!
//! A sentence of words w1 … wn is written `"\n" + w1 + " " + … + " " + wn + " "` for the
//! forward LM (a newline starts a line in the LM's training text) and, for the backward LM
//! (trained by `firth lm train --level char --reverse` on reversed lines), the same string with
//! the words' characters reversed: `"\n" + rev(wn) + " " + … + " " + rev(w1) + " "`. Both
//! strings are as long; with a_i the offset of word i in `w1 + " " + … + wn` (length L) and
//! |w_i| its length, the forward feature is the state after character 1 + a_i + |w_i| and the
//! backward one the state after character L - a_i + 1 (counting the leading newline as 0).
//!
//! A character the LM never saw in training has no row of its own (a character vocabulary has
//! no `<unk>`); it is read as the LM's *fallback*: the last non-whitespace character its
//! vocabulary gained, i.e. the one that first appeared latest in the training text, which in a
//! large text is one of the rarest. [`CharFeatures::unknown_chars`] counts how often that
//! happened, so a caller can say so.

use crate::lm::LanguageModel;
use anyhow::{bail, Context, Result};
use firth_text::Level;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Sentences per batch of the LMs' forward pass: enough rows to keep the products efficient,
/// few enough that padding to the longest sentence (the batch is sorted by length) costs little.
const BATCH: usize = 32;

/// Where a model directory (tagger or classifier) keeps copies of its forward and backward
/// LMs, so that it loads and runs on its own.
pub const DIRS: [&str; 2] = ["char-lm-fwd", "char-lm-bwd"];

/// The two directories of `--char-lm FWD_DIR,BWD_DIR`.
pub fn parse_dirs(arg: &str) -> Result<[PathBuf; 2], String> {
    match arg.split(',').collect::<Vec<_>>()[..] {
        [f, b] if !f.is_empty() && !b.is_empty() => Ok([f.into(), b.into()]),
        _ => Err(format!(
            "{arg:?}: expected two directories FWD_DIR,BWD_DIR separated by one comma: a forward and a backward character LM from `firth lm train --level char` (the backward one with --reverse)"
        )),
    }
}

/// One direction's LM with its character lookup.
#[derive(Clone, Debug)]
struct CharLm {
    model: LanguageModel<f32>,
    ids: HashMap<char, u32>,
    fallback: u32,
    newline: u32,
    space: u32,
}

impl CharLm {
    fn load(dir: &Path, reverse: bool) -> Result<CharLm> {
        let what = if reverse { "backward" } else { "forward" };
        let (model, vocab) = LanguageModel::load(dir)
            .with_context(|| format!("loading the {what} character LM {}", dir.display()))?;
        let flag = if reverse { " --reverse" } else { "" };
        let retrain = format!(
            "train one with `firth lm train --level char{flag}` and pass FWD_DIR,BWD_DIR to --char-lm"
        );
        if model.config.level != Level::Char {
            bail!(
                "{}: a word-level LM, but --char-lm needs character LMs; {retrain}",
                dir.display()
            );
        }
        if model.config.reverse != reverse {
            let (is, should) = if reverse {
                ("forward", "second (backward)")
            } else {
                ("backward", "first (forward)")
            };
            bail!(
                "{}: a {is} character LM in the {should} place of --char-lm FWD_DIR,BWD_DIR; swap the two, or {retrain}",
                dir.display()
            );
        }
        let mut ids = HashMap::new();
        for (i, t) in vocab.tokens().iter().enumerate() {
            let mut cs = t.chars();
            if let (Some(c), None) = (cs.next(), cs.next()) {
                ids.insert(c, i as u32);
            }
        }
        let need = |c: char, name: &str| {
            ids.get(&c).copied().with_context(|| {
                format!(
                    "{}: the LM never saw a {name} in training, which separates words and sentences here; {retrain} on text with one sentence per line",
                    dir.display()
                )
            })
        };
        let (newline, space) = (need('\n', "newline")?, need(' ', "space")?);
        let fallback = (0..vocab.len() as u32)
            .rev()
            .find(|&i| !vocab.token(i).chars().all(char::is_whitespace))
            .unwrap_or(space);
        Ok(CharLm {
            model,
            ids,
            fallback,
            newline,
            space,
        })
    }

    fn id(&self, c: char, unknown: &AtomicUsize) -> u32 {
        match self.ids.get(&c) {
            Some(&id) => id,
            None => {
                unknown.fetch_add(1, Ordering::Relaxed);
                self.fallback
            }
        }
    }
}

/// The forward and backward LMs, loaded from their directories.
#[derive(Clone, Debug)]
pub struct CharFeatures {
    fwd: CharLm,
    bwd: CharLm,
    /// The directories they came from (a saved tagger keeps copies of both).
    pub dirs: [PathBuf; 2],
    unknown: std::sync::Arc<AtomicUsize>,
    read: std::sync::Arc<AtomicUsize>,
}

/// The character ids each LM reads for one sentence and the rows whose states are the words'
/// features, as the module documentation lays out.
#[derive(Clone, Debug, PartialEq)]
pub struct SentenceChars {
    pub fwd: Vec<u32>,
    pub bwd: Vec<u32>,
    pub fwd_rows: Vec<usize>,
    pub bwd_rows: Vec<usize>,
}

impl CharFeatures {
    /// Loads the LMs of `--char-lm FWD_DIR,BWD_DIR`: a forward and a backward (`--reverse`)
    /// character LM of the same hidden size; each error names the directory at fault.
    pub fn load(fwd: &Path, bwd: &Path) -> Result<CharFeatures> {
        let f = CharLm::load(fwd, false)?;
        let b = CharLm::load(bwd, true)?;
        Ok(CharFeatures {
            fwd: f,
            bwd: b,
            dirs: [fwd.to_path_buf(), bwd.to_path_buf()],
            unknown: Default::default(),
            read: Default::default(),
        })
    }

    /// Copies both LMs' weights (`model.safetensors`) into `model_dir`'s [`DIRS`], atomically;
    /// a copy onto itself (a resumed run given its own copies) is skipped.
    pub fn save_to(&self, model_dir: &Path) -> Result<()> {
        for (src, name) in self.dirs.iter().zip(DIRS) {
            let from = if src.is_dir() {
                src.join(crate::trainer::MODEL)
            } else {
                src.clone()
            };
            let dst = model_dir.join(name);
            std::fs::create_dir_all(&dst).with_context(|| format!("creating {}", dst.display()))?;
            let to = dst.join(crate::trainer::MODEL);
            if let (Ok(a), Ok(b)) = (from.canonicalize(), to.canonicalize()) {
                if a == b {
                    continue;
                }
            }
            let bytes =
                std::fs::read(&from).with_context(|| format!("reading {}", from.display()))?;
            firth_nn::checkpoint::write_atomic(&to, &bytes)?;
        }
        Ok(())
    }

    /// The LMs kept next to the model file `file` (in [`DIRS`]) of a model whose inputs
    /// include `dim` character-LM features; `None` for a model without them (`dim` 0).
    pub fn of_model(file: &Path, dim: usize) -> Result<Option<CharFeatures>> {
        if dim == 0 {
            return Ok(None);
        }
        let dir = file.parent().unwrap_or(Path::new("."));
        let [f, b] = DIRS.map(|d| dir.join(d));
        let lms = CharFeatures::load(&f, &b).with_context(|| {
            format!(
                "{} reads character-LM features, so its directory must hold the two LMs it was trained with ({} and {}); copy them back, or retrain",
                file.display(),
                DIRS[0],
                DIRS[1]
            )
        })?;
        if lms.dim() != dim {
            bail!(
                "{}: the model reads {dim} character-LM features per word but the LMs in its directory give {}; they are not the LMs it was trained with",
                file.display(),
                lms.dim()
            );
        }
        Ok(Some(lms))
    }

    /// The LMs that a model reading `dim` character-LM features per word (0: none) needs to
    /// encode its inputs, checked: `lm` when it gives `dim` features, `None` when `dim` is 0,
    /// else an error naming `what` (the data being encoded). Shared by the tagger and the
    /// classifier, whose loaders bring the LMs ([`Self::of_model`]).
    pub fn for_model<'a>(
        dim: usize,
        lm: Option<&'a CharFeatures>,
        what: &Path,
    ) -> Result<Option<&'a CharFeatures>> {
        match (dim, lm) {
            (0, _) => Ok(None),
            (d, Some(lm)) if lm.dim() == d => Ok(Some(lm)),
            (d, lm) => bail!(
                "{}: the model reads {d} character-LM features per word, but {}; load the model from its directory (Tagger::load, Bundle::load), which brings the LMs kept there",
                what.display(),
                lm.map_or("no LMs were given".to_string(), |l| format!(
                    "the LMs given give {}",
                    l.dim()
                ))
            ),
        }
    }

    /// What computing the features has cost so far, for a training run's log: characters
    /// read per second (both LMs together) over `seconds`, characters unknown to the LMs, and
    /// the process's peak memory.
    pub fn note(&self, seconds: f64) -> String {
        format!(
            "character-LM features ({} per word): {} characters read by the two LMs in {seconds:.1} s ({:.0} characters/s); {} characters unknown to the LMs read as their fallback; peak memory {:.0} MiB",
            self.dim(),
            self.chars_read(),
            self.chars_read() as f64 / seconds.max(1e-9),
            self.unknown_chars(),
            firth_text::peak_rss_bytes() as f64 / (1 << 20) as f64
        )
    }

    /// Features per word: the forward LM's top width plus the backward LM's.
    pub fn dim(&self) -> usize {
        self.fwd.model.config.hidden + self.bwd.model.config.hidden
    }

    /// How many characters so far were not in an LM's vocabulary and read as its fallback.
    pub fn unknown_chars(&self) -> usize {
        self.unknown.load(Ordering::Relaxed)
    }

    /// How many characters [`Self::extract`] has run through the two LMs so far (padding
    /// excluded).
    pub fn chars_read(&self) -> usize {
        self.read.load(Ordering::Relaxed)
    }

    /// The two character strings of `words` and the rows of their features.
    pub fn sentence_chars<S: AsRef<str>>(&self, words: &[S]) -> SentenceChars {
        let unknown = &*self.unknown;
        let (f, b) = (&self.fwd, &self.bwd);
        let mut s = SentenceChars {
            fwd: vec![f.newline],
            bwd: Vec::new(),
            fwd_rows: Vec::with_capacity(words.len()),
            bwd_rows: Vec::with_capacity(words.len()),
        };
        // Offsets a_i of each word in the joined sentence.
        let mut starts = Vec::with_capacity(words.len());
        for w in words {
            starts.push(s.fwd.len() - 1);
            s.fwd.extend(w.as_ref().chars().map(|c| f.id(c, unknown)));
            s.fwd_rows.push(s.fwd.len());
            s.fwd.push(f.space);
        }
        let l = s.fwd.len().saturating_sub(2);
        s.bwd.push(b.newline);
        for w in words.iter().rev() {
            s.bwd
                .extend(w.as_ref().chars().rev().map(|c| b.id(c, unknown)));
            s.bwd.push(b.space);
        }
        s.bwd_rows.extend(starts.iter().map(|&a| l - a + 1));
        s
    }

    /// Features of every word of every sentence: (words, [`Self::dim`]) row-major per
    /// sentence, forward state first. Sentences are read in batches of similar length, the
    /// batches spread over the rayon pool (each thread with its own copy of the LMs).
    pub fn extract<W, S>(&self, sentences: &[W]) -> Vec<Vec<f32>>
    where
        W: AsRef<[S]> + Sync,
        S: AsRef<str>,
    {
        use rayon::prelude::*;
        let mut order: Vec<usize> = (0..sentences.len()).collect();
        let chars: Vec<SentenceChars> = sentences
            .iter()
            .map(|s| self.sentence_chars(s.as_ref()))
            .collect();
        order.sort_by_key(|&i| chars[i].fwd.len());
        let total: usize = chars.iter().map(|c| c.fwd.len() + c.bwd.len()).sum();
        self.read.fetch_add(total, Ordering::Relaxed);
        let batches: Vec<&[usize]> = order.chunks(BATCH).collect();
        let done: Vec<Vec<(usize, Vec<f32>)>> = batches
            .par_iter()
            .map_init(
                || (self.fwd.model.clone(), self.bwd.model.clone()),
                |(fm, bm), batch| {
                    firth_nn::par::sequential(|| {
                        let fwd = run(fm, self.fwd.newline, batch, &chars, |s| &s.fwd);
                        let bwd = run(bm, self.bwd.newline, batch, &chars, |s| &s.bwd);
                        let (hf, hb) = (fm.config.hidden, bm.config.hidden);
                        let b_n = batch.len();
                        batch
                            .iter()
                            .enumerate()
                            .map(|(b, &i)| {
                                let c = &chars[i];
                                let mut out = Vec::with_capacity(c.fwd_rows.len() * (hf + hb));
                                for (&rf, &rb) in c.fwd_rows.iter().zip(&c.bwd_rows) {
                                    out.extend_from_slice(&fwd[(rf * b_n + b) * hf..][..hf]);
                                    out.extend_from_slice(&bwd[(rb * b_n + b) * hb..][..hb]);
                                }
                                (i, out)
                            })
                            .collect()
                    })
                },
            )
            .collect();
        let mut out = vec![Vec::new(); sentences.len()];
        for (i, f) in done.into_iter().flatten() {
            out[i] = f;
        }
        out
    }
}

/// Steps per forward pass of [`run`]: the state carries across passes, so this only bounds
/// the activations kept at once (a batch of long sentences would otherwise hold every step's
/// gates, hundreds of MB per LM, next to the features).
const STEPS: usize = 128;

/// The top layer's outputs (T, B, H) of `model` over the sentences `batch` (indices into
/// `chars`, their strings picked by `pick`), padded with newlines to the longest.
fn run(
    model: &mut LanguageModel<f32>,
    pad: u32,
    batch: &[usize],
    chars: &[SentenceChars],
    pick: impl Fn(&SentenceChars) -> &Vec<u32>,
) -> Vec<f32> {
    let b_n = batch.len();
    let steps = batch
        .iter()
        .map(|&i| pick(&chars[i]).len())
        .max()
        .unwrap_or(0);
    let mut ids = vec![pad; steps * b_n];
    for (b, &i) in batch.iter().enumerate() {
        for (t, &id) in pick(&chars[i]).iter().enumerate() {
            ids[t * b_n + b] = id;
        }
    }
    let mut state = model.start_state(b_n, pad);
    let mut rng = firth_nn::Rng::new(0);
    let mut out = Vec::with_capacity(steps * b_n * model.config.hidden);
    for block in ids.chunks(STEPS * b_n) {
        let t = block.len() / b_n;
        model.forward_body(block, t, b_n, &mut state, false, &mut rng);
        out.extend_from_slice(model.top());
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::decode::StepDecoder;
    use crate::lm::{Arch, LmConfig};
    use firth_nn::Rng;
    use firth_text::Vocab;

    /// Character LMs (untrained, seeded) over `text`'s characters, saved in `dir/fwd` and
    /// `dir/bwd`; the backward one marked `--reverse`.
    pub(crate) fn save_lms(dir: &Path, text: &str, hidden: usize) -> (PathBuf, PathBuf) {
        let vocab = Vocab::build(text, Level::Char);
        let mut out = Vec::new();
        for (name, reverse, seed) in [("fwd", false, 1), ("bwd", true, 2)] {
            let config = LmConfig {
                layers: 2,
                emb: 5,
                init_range: 0.5,
                reverse,
                ..LmConfig::new(Arch::Lstm, Level::Char, vocab.len(), hidden)
            };
            let model = LanguageModel::<f32>::new(config, &mut Rng::new(seed)).unwrap();
            let d = dir.join(name);
            std::fs::create_dir_all(&d).unwrap();
            let mut t = model.to_tensors(&vocab).unwrap();
            t.metadata.insert("firth".into(), "lm-model-v1".into());
            t.save(&d.join(crate::trainer::MODEL)).unwrap();
            out.push(d);
        }
        (out[0].clone(), out[1].clone())
    }

    fn temp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("firth-charfeat-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn the_strings_and_feature_rows_of_a_sentence() {
        let dir = temp("rows");
        let (f, b) = save_lms(&dir, "ab c\nxyz\n", 3);
        let cf = CharFeatures::load(&f, &b).unwrap();
        let s = cf.sentence_chars(&["ab", "c"]);
        let (fv, bv) = (
            LanguageModel::load(&f).unwrap().1,
            LanguageModel::load(&b).unwrap().1,
        );
        assert_eq!(fv.decode(&s.fwd, Level::Char), "\nab c ");
        assert_eq!(bv.decode(&s.bwd, Level::Char), "\nc ba ");
        // "ab" ends before the space at 3, "c" before the one at 5; read backwards, "ab"
        // ends (at its 'a') before the space at 5, "c" before the one at 2.
        assert_eq!(s.fwd_rows, vec![3, 5]);
        assert_eq!(s.bwd_rows, vec![5, 2]);
        assert_eq!(cf.dim(), 6);
        // An unseen character reads as the last non-space character the vocabulary gained.
        let s = cf.sentence_chars(&["aQ"]);
        assert_eq!(fv.decode(&s.fwd, Level::Char), "\naz ");
        assert_eq!(cf.unknown_chars(), 2);
        std::fs::remove_dir_all(&dir).ok();
    }

    /// Every word's feature equals the LMs' top hidden state stepped one character at a time
    /// (batch 1, the decoder's step) to the space after the word (forward) or before it
    /// (backward), over more sentences than one batch holds and of different lengths.
    #[test]
    fn features_equal_the_states_of_stepping_each_lm_by_hand() {
        let dir = temp("step");
        let text = "the cat sat on a mat\nÉmile ate 12 figs .\n";
        let (f, b) = save_lms(&dir, text, 4);
        let cf = CharFeatures::load(&f, &b).unwrap();
        let words = [
            "the", "cat", "sat", "on", "a", "mat", "Émile", "ate", "12", "figs", ".",
        ];
        // Lengths up to 89 words, more characters than one forward pass of `run` reads.
        let sentences: Vec<Vec<String>> = (0..2 * BATCH + 5)
            .map(|i| {
                (0..1 + (i * 7) % 9 + if i % 10 == 3 { 80 } else { 0 })
                    .map(|k| words[(i + 3 * k) % words.len()].to_string())
                    .collect()
            })
            .collect();
        let feats = cf.extract(&sentences);
        let (mut fm, fv) = LanguageModel::load(&f).unwrap();
        let (mut bm, bv) = LanguageModel::load(&b).unwrap();
        // The top hidden state after each space of `s` (not the first character).
        let states_at_spaces = |m: &mut LanguageModel<f32>, v: &Vocab, s: &str| {
            let mut state = m.start_state(1, 0);
            let mut out = Vec::new();
            for (k, c) in s.chars().enumerate() {
                m.step(&mut state, &[v.get(&c.to_string()).unwrap()]);
                if c == ' ' && k > 0 {
                    out.push(state.h[1].clone());
                }
            }
            out
        };
        for (s, got) in sentences.iter().zip(&feats) {
            let joined = s.join(" ");
            let fwd = states_at_spaces(&mut fm, &fv, &format!("\n{joined} "));
            let rev: String = joined.chars().rev().collect();
            let mut bwd = states_at_spaces(&mut bm, &bv, &format!("\n{rev} "));
            bwd.reverse();
            assert_eq!(got.len(), s.len() * 8);
            for (i, (hf, hb)) in fwd.iter().zip(&bwd).enumerate() {
                let want = hf.iter().chain(hb);
                for (k, (a, b)) in got[i * 8..(i + 1) * 8].iter().zip(want).enumerate() {
                    assert!((a - b).abs() < 1e-5, "{s:?} word {i} unit {k}: {a} vs {b}");
                }
            }
        }
        assert!(sentences.iter().any(|s| s.join(" ").len() > 2 * STEPS));
        assert_eq!(cf.unknown_chars(), 0);
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn wrong_lms_are_refused_naming_the_directory() {
        let dir = temp("bad");
        let (f, b) = save_lms(&dir, "ab c\n", 3);
        let e = CharFeatures::load(&b, &f).unwrap_err().to_string();
        assert!(
            e.contains(&b.display().to_string()) && e.contains("swap"),
            "{e}"
        );
        let e = parse_dirs(&f.display().to_string()).unwrap_err();
        assert!(e.contains("FWD_DIR,BWD_DIR"), "{e}");
        assert!(parse_dirs("a,").is_err() && parse_dirs("a,b,c").is_err());
        assert_eq!(parse_dirs("a,b").unwrap(), [PathBuf::from("a"), "b".into()]);
        let missing = dir.join("none");
        let e = format!("{:#}", CharFeatures::load(&f, &missing).unwrap_err());
        assert!(
            e.contains("backward character LM") && e.contains("none"),
            "{e}"
        );
        // A word LM.
        let w = dir.join("word");
        std::fs::create_dir_all(&w).unwrap();
        let vocab = Vocab::build("a b\n", Level::Word);
        let m = LanguageModel::<f32>::new(
            LmConfig::new(Arch::Lstm, Level::Word, vocab.len(), 3),
            &mut Rng::new(1),
        )
        .unwrap();
        let mut t = m.to_tensors(&vocab).unwrap();
        t.metadata.insert("firth".into(), "lm-model-v1".into());
        t.save(&w.join(crate::trainer::MODEL)).unwrap();
        let e = CharFeatures::load(&w, &b).unwrap_err().to_string();
        assert!(
            e.contains("word-level LM") && e.contains(&w.display().to_string()),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).ok();
    }
}
