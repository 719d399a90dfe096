//! A set of word vectors (owned or memory-mapped) with similarity and analogy queries.

use std::collections::HashMap;

use rayon::prelude::*;

use crate::simd::dot;

/// Where the matrix lives.
pub enum Store {
    Owned(Vec<f32>),
    /// A memory-mapped firth file; the matrix is `count × dim` f32 at `offset`.
    Mapped {
        map: memmap2::Mmap,
        offset: usize,
        len: usize,
    },
}

/// Word vectors: `words[i]` has row `i` of a `words.len() × dim` matrix.
pub struct Embeddings {
    pub words: Vec<String>,
    pub dim: usize,
    store: Store,
    index: HashMap<String, u32>,
    /// Unit-length rows, made on the first query that needs them and kept (the matrix never
    /// changes after construction).
    normed: std::sync::OnceLock<Vec<f32>>,
}

/// One input of a gensim-style query: a word of the vocabulary, or a raw vector.
#[derive(Debug, Clone, Copy)]
pub enum Term<'a> {
    Key(&'a str),
    Vector(&'a [f32]),
}

/// Why a gensim-style query has no answer. The messages are gensim's, so a program that
/// switches from it sees the same text.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum QueryError {
    #[error("Key '{0}' not present in vocabulary")]
    NotInVocabulary(String),
    #[error("cannot compute similarity with no input")]
    NoInput,
    #[error("a query vector has {got} values; these vectors have {want}")]
    Dimension { got: usize, want: usize },
}

/// Analogy scoring: 3CosAdd (argmax cos(x, b - a + c)) or 3CosMul (Levy & Goldberg 2014).
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnalogyMethod {
    #[cfg_attr(feature = "clap", value(name = "cosadd"))]
    CosAdd,
    #[cfg_attr(feature = "clap", value(name = "cosmul"))]
    CosMul,
}

impl Embeddings {
    pub fn new(words: Vec<String>, dim: usize, data: Vec<f32>) -> Embeddings {
        assert_eq!(words.len() * dim, data.len(), "matrix size");
        Self::with_store(words, dim, Store::Owned(data))
    }

    pub fn with_store(words: Vec<String>, dim: usize, store: Store) -> Embeddings {
        let mut index = HashMap::with_capacity(words.len());
        // The first occurrence of a word wins (as gensim does when keys repeat).
        for (i, w) in words.iter().enumerate().rev() {
            index.insert(w.clone(), i as u32);
        }
        Embeddings {
            words,
            dim,
            store,
            index,
            normed: std::sync::OnceLock::new(),
        }
    }

    /// The first word listed twice, as (first entry, second entry), if any.
    pub fn first_duplicate(&self) -> Option<(usize, usize)> {
        if self.index.len() == self.words.len() {
            return None;
        }
        let mut seen: HashMap<&str, usize> = HashMap::with_capacity(self.words.len());
        for (i, w) in self.words.iter().enumerate() {
            if let Some(&first) = seen.get(w.as_str()) {
                return Some((first, i));
            }
            seen.insert(w, i);
        }
        None
    }

    pub fn len(&self) -> usize {
        self.words.len()
    }
    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    /// The whole matrix, row-major.
    pub fn matrix(&self) -> &[f32] {
        match &self.store {
            Store::Owned(v) => v,
            Store::Mapped { map, offset, len } => {
                let bytes = &map[*offset..*offset + len * 4];
                // SAFETY: the loader checked that this range is in the map, 4-byte aligned (the
                // map is page-aligned and the offset a multiple of 64) and little-endian f32s;
                // every bit pattern is a valid f32.
                unsafe { std::slice::from_raw_parts(bytes.as_ptr() as *const f32, *len) }
            }
        }
    }

    pub fn vector(&self, i: usize) -> &[f32] {
        &self.matrix()[i * self.dim..(i + 1) * self.dim]
    }

    pub fn index_of(&self, w: &str) -> Option<usize> {
        self.index.get(w).map(|&i| i as usize)
    }

    pub fn get(&self, w: &str) -> Option<&[f32]> {
        self.index_of(w).map(|i| self.vector(i))
    }

    /// Rows scaled to unit length (zero rows stay zero), as gensim's `get_normed_vectors`.
    pub fn normalized(&self) -> Vec<f32> {
        let mut out = self.matrix().to_vec();
        if self.dim == 0 {
            return out;
        }
        out.par_chunks_mut(self.dim).for_each(|r| {
            let n = r.iter().map(|x| x * x).sum::<f32>().sqrt();
            if n > 0.0 {
                for x in r {
                    *x /= n;
                }
            }
        });
        out
    }

    /// [`Embeddings::normalized`], computed once and kept.
    pub fn normed(&self) -> &[f32] {
        self.normed.get_or_init(|| self.normalized())
    }

    fn term_vector<'t>(&'t self, t: &Term<'t>, unit: bool) -> Result<&'t [f32], QueryError> {
        match *t {
            Term::Key(w) => {
                let i = self
                    .index_of(w)
                    .ok_or_else(|| QueryError::NotInVocabulary(w.to_string()))?;
                Ok(if unit {
                    &self.normed()[i * self.dim..(i + 1) * self.dim]
                } else {
                    self.vector(i)
                })
            }
            Term::Vector(v) if v.len() != self.dim => Err(QueryError::Dimension {
                got: v.len(),
                want: self.dim,
            }),
            Term::Vector(v) => Ok(v),
        }
    }

    /// The rows of the words among `terms`, which a query leaves out of its answers.
    fn key_ids(&self, terms: &[Term]) -> Vec<usize> {
        let mut ids: Vec<usize> = terms
            .iter()
            .filter_map(|t| match t {
                Term::Key(w) => self.index_of(w),
                Term::Vector(_) => None,
            })
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    /// gensim's `get_mean_vector(keys, weights, pre_normalize=True, post_normalize=True)`: the
    /// weighted mean of the words' unit vectors (raw vectors as given), scaled to unit length.
    pub fn mean_vector(&self, terms: &[(Term, f32)]) -> Result<Vec<f32>, QueryError> {
        if terms.is_empty() {
            return Err(QueryError::NoInput);
        }
        let mut mean = vec![0f32; self.dim];
        for (t, w) in terms {
            for (m, x) in mean.iter_mut().zip(self.term_vector(t, true)?) {
                *m += w * x;
            }
        }
        let n = dot(&mean, &mean).sqrt();
        if n > 0.0 {
            for m in mean.iter_mut() {
                *m /= n;
            }
        }
        Ok(mean)
    }

    /// Cosine of `q` (unit length) with each of the first `limit` rows.
    pub fn cosines(&self, q: &[f32], limit: usize) -> Vec<f32> {
        let norm = self.normed();
        let d = self.dim;
        (0..limit.min(self.len()))
            .into_par_iter()
            .map(|i| dot(&norm[i * d..(i + 1) * d], q))
            .collect()
    }

    /// gensim's `most_similar(positive, negative, topn, restrict_vocab)`: the `topn` words
    /// among the first `limit` nearest to the mean of the positive words' unit vectors minus
    /// the negative ones' (each with its weight: +1 and -1 unless given), the query words
    /// left out.
    pub fn most_similar(
        &self,
        terms: &[(Term, f32)],
        topn: usize,
        limit: usize,
    ) -> Result<Vec<(String, f32)>, QueryError> {
        let q = self.mean_vector(terms)?;
        let keys: Vec<Term> = terms.iter().map(|(t, _)| *t).collect();
        let exclude = self.key_ids(&keys);
        Ok(self.top_k(self.normed(), &q, topn, &exclude, limit))
    }

    /// gensim's 3CosMul scores (Levy and Goldberg 2014, eq. 4, cosines shifted to [0, 1]):
    /// Π_pos (1 + cos(x, p)) / 2 over (Π_neg (1 + cos(x, n)) / 2 + 1e-6), for each of the
    /// first `limit` rows x. Words are taken as unit vectors, raw vectors as given.
    pub fn cosmul_scores(
        &self,
        positive: &[Term],
        negative: &[Term],
        limit: usize,
    ) -> Result<Vec<f32>, QueryError> {
        if positive.is_empty() {
            return Err(QueryError::NoInput);
        }
        let vecs = |ts: &[Term<'_>]| -> Result<Vec<Vec<f32>>, QueryError> {
            ts.iter()
                .map(|t| self.term_vector(t, true).map(|v| v.to_vec()))
                .collect()
        };
        let (pos, neg) = (vecs(positive)?, vecs(negative)?);
        let norm = self.normed();
        let d = self.dim;
        Ok((0..limit.min(self.len()))
            .into_par_iter()
            .map(|i| {
                let x = &norm[i * d..(i + 1) * d];
                let shifted = |v: &Vec<f32>| (1.0 + dot(x, v)) / 2.0;
                let p: f32 = pos.iter().map(shifted).product();
                let n: f32 = neg.iter().map(shifted).product();
                p / (n + 1e-6)
            })
            .collect())
    }

    /// gensim's `most_similar_cosmul`: the `topn` best rows by [`Embeddings::cosmul_scores`],
    /// the query words left out.
    pub fn most_similar_cosmul(
        &self,
        positive: &[Term],
        negative: &[Term],
        topn: usize,
        limit: usize,
    ) -> Result<Vec<(String, f32)>, QueryError> {
        let scores = self.cosmul_scores(positive, negative, limit)?;
        let all: Vec<Term> = positive.iter().chain(negative).copied().collect();
        let exclude = self.key_ids(&all);
        let mut ranked: Vec<(usize, f32)> = scores
            .into_iter()
            .enumerate()
            .filter(|(i, _)| !exclude.contains(i))
            .collect();
        ranked.sort_by(|x, y| y.1.total_cmp(&x.1).then(x.0.cmp(&y.0)));
        ranked.truncate(topn);
        Ok(ranked
            .into_iter()
            .map(|(i, s)| (self.words[i].clone(), s))
            .collect())
    }

    /// gensim's `doesnt_match`: of the words in the vocabulary, the one least like the unit
    /// mean of their unit vectors (ties to the alphabetically first). Words outside the
    /// vocabulary are ignored; none left is [`QueryError::NoInput`].
    pub fn doesnt_match(&self, words: &[&str]) -> Result<String, QueryError> {
        let used: Vec<(&str, usize)> = words
            .iter()
            .filter_map(|w| self.index_of(w).map(|i| (*w, i)))
            .collect();
        let terms: Vec<(Term, f32)> = used.iter().map(|(w, _)| (Term::Key(w), 1.0)).collect();
        let mean = self.mean_vector(&terms)?;
        let norm = self.normed();
        let d = self.dim;
        let mut scored: Vec<(f32, &str)> = used
            .iter()
            .map(|&(w, i)| (dot(&norm[i * d..(i + 1) * d], &mean), w))
            .collect();
        scored.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(b.1)));
        Ok(scored[0].1.to_string())
    }

    /// Cosine similarity of two words.
    pub fn similarity(&self, a: &str, b: &str) -> Option<f32> {
        let (x, y) = (self.get(a)?, self.get(b)?);
        let (nx, ny) = (dot(x, x).sqrt(), dot(y, y).sqrt());
        if nx == 0.0 || ny == 0.0 {
            return Some(0.0);
        }
        Some(dot(x, y) / (nx * ny))
    }

    /// The `k` words most similar (cosine) to `word`, excluding it.
    pub fn similar(&self, word: &str, k: usize) -> Option<Vec<(String, f32)>> {
        let i = self.index_of(word)?;
        let norm = self.normalized();
        let q = norm[i * self.dim..(i + 1) * self.dim].to_vec();
        Some(self.top_k(&norm, &q, k, &[i], self.len()))
    }

    /// Best `k` rows of `norm` (first `limit` rows) by dot with `q`, skipping `exclude`.
    pub fn top_k(
        &self,
        norm: &[f32],
        q: &[f32],
        k: usize,
        exclude: &[usize],
        limit: usize,
    ) -> Vec<(String, f32)> {
        top_k_ids(norm, self.dim, q, k, exclude, limit.min(self.len()))
            .into_iter()
            .map(|(i, s)| (self.words[i].clone(), s))
            .collect()
    }

    /// Answers "a is to b as c is to ?" (b - a + c), query words excluded.
    pub fn analogy(
        &self,
        a: &str,
        b: &str,
        c: &str,
        k: usize,
        method: AnalogyMethod,
    ) -> Result<Vec<(String, f32)>, String> {
        let ids: Vec<usize> = [a, b, c]
            .iter()
            .map(|w| {
                self.index_of(w)
                    .ok_or_else(|| format!("'{w}' is not in the vocabulary"))
            })
            .collect::<Result<_, _>>()?;
        let norm = self.normalized();
        let d = self.dim;
        let r = |i: usize| &norm[i * d..(i + 1) * d];
        match method {
            AnalogyMethod::CosAdd => {
                let q = cosadd_query(r(ids[0]), r(ids[1]), r(ids[2]));
                Ok(self.top_k(&norm, &q, k, &ids, self.len()))
            }
            AnalogyMethod::CosMul => {
                // gensim most_similar_cosmul: ((1+cos(x,b))/2 · (1+cos(x,c))/2) / ((1+cos(x,a))/2 + 1e-6).
                let mut scored: Vec<(usize, f32)> = (0..self.len())
                    .filter(|i| !ids.contains(i))
                    .map(|i| {
                        let x = r(i);
                        let p = |j: usize| (1.0 + dot(x, r(j))) / 2.0;
                        (i, p(ids[1]) * p(ids[2]) / (p(ids[0]) + 1e-6))
                    })
                    .collect();
                scored.sort_by(|x, y| y.1.total_cmp(&x.1));
                scored.truncate(k);
                Ok(scored
                    .into_iter()
                    .map(|(i, s)| (self.words[i].clone(), s))
                    .collect())
            }
        }
    }
}

/// unit((b + c - a) / 3) as gensim computes it (mean of the weighted unit vectors, then unit).
pub fn cosadd_query(a: &[f32], b: &[f32], c: &[f32]) -> Vec<f32> {
    let mut q: Vec<f32> = (0..a.len()).map(|i| (b[i] + c[i] - a[i]) / 3.0).collect();
    let n = q.iter().map(|x| x * x).sum::<f32>().sqrt();
    if n > 0.0 {
        for x in q.iter_mut() {
            *x /= n;
        }
    }
    q
}

/// Ids of the `k` best rows (by dot with `q`) among the first `limit`, excluding `exclude`;
/// ties keep the lower id first.
pub fn top_k_ids(
    norm: &[f32],
    dim: usize,
    q: &[f32],
    k: usize,
    exclude: &[usize],
    limit: usize,
) -> Vec<(usize, f32)> {
    if k == 0 {
        return vec![];
    }
    let mut best: Vec<(usize, f32)> = Vec::with_capacity(k + 1);
    for i in 0..limit {
        if exclude.contains(&i) {
            continue;
        }
        let s = dot(&norm[i * dim..(i + 1) * dim], q);
        if best.len() < k || s > best[best.len() - 1].1 {
            let pos = best.partition_point(|&(_, bs)| bs >= s);
            best.insert(pos, (i, s));
            best.truncate(k);
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A hand-made 2-D space: king - man + woman lands exactly on queen.
    fn toy() -> Embeddings {
        let words = ["man", "woman", "king", "queen", "apple"]
            .map(String::from)
            .to_vec();
        #[rustfmt::skip]
        let data = vec![
            1.0, 0.0,   // man
            0.0, 1.0,   // woman
            1.0, 0.2,   // king
            0.2, 1.0,   // queen
            -1.0, -0.3, // apple
        ];
        Embeddings::new(words, 2, data)
    }

    #[test]
    fn analogy_on_hand_made_vectors() {
        let e = toy();
        let r = e
            .analogy("man", "king", "woman", 1, AnalogyMethod::CosAdd)
            .unwrap();
        assert_eq!(r[0].0, "queen");
        let r = e
            .analogy("man", "king", "woman", 1, AnalogyMethod::CosMul)
            .unwrap();
        assert_eq!(r[0].0, "queen");
        assert!(e
            .analogy("man", "king", "robot", 1, AnalogyMethod::CosAdd)
            .is_err());
    }

    #[test]
    fn gensim_queries_on_hand_made_vectors() {
        let e = toy();
        // most_similar(positive=[king, woman], negative=[man]) is the 3CosAdd analogy.
        let terms = [
            (Term::Key("king"), 1.0),
            (Term::Key("woman"), 1.0),
            (Term::Key("man"), -1.0),
        ];
        let r = e.most_similar(&terms, 2, e.len()).unwrap();
        let a = e
            .analogy("man", "king", "woman", 2, AnalogyMethod::CosAdd)
            .unwrap();
        assert_eq!(r[0].0, "queen");
        assert_eq!(r.len(), 2);
        for (x, y) in r.iter().zip(&a) {
            assert_eq!(x.0, y.0);
            assert!((x.1 - y.1).abs() < 1e-6);
        }
        // A raw vector counts as given, and excludes nothing.
        let r = e
            .most_similar(&[(Term::Vector(&[1.0, 0.0]), 1.0)], 1, e.len())
            .unwrap();
        assert_eq!(r[0].0, "man");
        assert!((r[0].1 - 1.0).abs() < 1e-6);
        // Only the first `limit` rows answer.
        let r = e.most_similar(&[(Term::Key("queen"), 1.0)], 5, 2).unwrap();
        assert_eq!(
            r.iter().map(|p| p.0.as_str()).collect::<Vec<_>>(),
            ["woman", "man"]
        );
        assert_eq!(
            e.most_similar(&[(Term::Key("robot"), 1.0)], 1, 5)
                .unwrap_err(),
            QueryError::NotInVocabulary("robot".into())
        );
        assert_eq!(e.most_similar(&[], 1, 5).unwrap_err(), QueryError::NoInput);
        assert!(matches!(
            e.most_similar(&[(Term::Vector(&[1.0]), 1.0)], 1, 5),
            Err(QueryError::Dimension { got: 1, want: 2 })
        ));
        // 3CosMul agrees with the analogy method of the same name.
        let r = e
            .most_similar_cosmul(
                &[Term::Key("king"), Term::Key("woman")],
                &[Term::Key("man")],
                1,
                e.len(),
            )
            .unwrap();
        let a = e
            .analogy("man", "king", "woman", 1, AnalogyMethod::CosMul)
            .unwrap();
        assert_eq!(r[0].0, a[0].0);
        assert!((r[0].1 - a[0].1).abs() < 1e-5);
        // The apple is the odd one out; unknown words are ignored.
        assert_eq!(
            e.doesnt_match(&["man", "king", "apple", "woman", "robot"])
                .unwrap(),
            "apple"
        );
        assert_eq!(e.doesnt_match(&["robot"]).unwrap_err(), QueryError::NoInput);
    }

    #[test]
    fn similar_excludes_query() {
        let e = toy();
        let s = e.similar("king", 2).unwrap();
        assert_eq!(s[0].0, "man");
        assert!(s.iter().all(|(w, _)| w != "king"));
        // cos(king, man) = 1 / sqrt(1.04)
        assert!((s[0].1 - 1.0 / 1.04f32.sqrt()).abs() < 1e-6);
        assert!((e.similarity("man", "woman").unwrap()).abs() < 1e-7);
    }

    #[test]
    fn one_hot_vectors_are_orthogonal() {
        let words: Vec<String> = (0..4).map(|i| format!("w{i}")).collect();
        let mut data = vec![0.0; 16];
        for i in 0..4 {
            data[i * 4 + i] = 1.0;
        }
        let e = Embeddings::new(words, 4, data);
        for a in 0..4 {
            for b in 0..4 {
                let s = e.similarity(&format!("w{a}"), &format!("w{b}")).unwrap();
                assert_eq!(s, if a == b { 1.0 } else { 0.0 });
            }
        }
    }
}

/// Projects `n × dim` rows (row-major) onto their first two principal components (power
/// iteration with deflation on the covariance), returning one (x, y) per row.
pub fn pca2(rows: &[f32], dim: usize) -> Vec<(f32, f32)> {
    let n = rows.len().checked_div(dim).unwrap_or(0);
    if n == 0 {
        return vec![];
    }
    let mut mean = vec![0f64; dim];
    for r in rows.chunks(dim) {
        for (m, &x) in mean.iter_mut().zip(r) {
            *m += x as f64 / n as f64;
        }
    }
    let centred: Vec<Vec<f64>> = rows
        .chunks(dim)
        .map(|r| r.iter().zip(&mean).map(|(&x, m)| x as f64 - m).collect())
        .collect();
    // Covariance-vector product without forming the matrix: C v = Σ_i x_i (x_i · v).
    let cov_mul = |v: &[f64]| -> Vec<f64> {
        let mut out = vec![0.0; dim];
        for x in &centred {
            let s: f64 = x.iter().zip(v).map(|(a, b)| a * b).sum();
            for (o, a) in out.iter_mut().zip(x) {
                *o += a * s;
            }
        }
        out
    };
    let unit = |v: &mut Vec<f64>| {
        let n = v.iter().map(|x| x * x).sum::<f64>().sqrt();
        if n > 0.0 {
            v.iter_mut().for_each(|x| *x /= n);
        }
    };
    let mut comps: Vec<Vec<f64>> = vec![];
    for c in 0..2 {
        let mut v: Vec<f64> = (0..dim)
            .map(|i| 1.0 + ((i * 7 + c * 3) % 11) as f64 * 0.1)
            .collect();
        unit(&mut v);
        for _ in 0..200 {
            let mut w = cov_mul(&v);
            for p in &comps {
                let s: f64 = w.iter().zip(p).map(|(a, b)| a * b).sum();
                w.iter_mut().zip(p).for_each(|(a, b)| *a -= s * b);
            }
            unit(&mut w);
            v = w;
        }
        comps.push(v);
    }
    centred
        .iter()
        .map(|x| {
            let p = |c: &Vec<f64>| x.iter().zip(c).map(|(a, b)| a * b).sum::<f64>() as f32;
            (p(&comps[0]), p(&comps[1]))
        })
        .collect()
}

#[cfg(test)]
mod pca_tests {
    #[test]
    fn pca_recovers_dominant_axis() {
        // Points spread along (1, 1, 0) with a little spread along (0, 0, 1).
        let mut rows = vec![];
        for i in 0..10 {
            let t = i as f32 - 4.5;
            rows.extend_from_slice(&[t, t, 0.1 * (i % 2) as f32]);
        }
        let p = super::pca2(&rows, 3);
        // First coordinate is ±t·√2.
        let s = p[9].0.signum();
        for (i, (x, _)) in p.iter().enumerate() {
            assert!((x * s - (i as f32 - 4.5) * 2f32.sqrt()).abs() < 1e-3);
        }
    }
}
