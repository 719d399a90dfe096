//! What the server was given, loaded once at start: each path becomes one or more entries
//! (a model directory that also holds training curves is a model and an insight run), each
//! named by a short id. Requests name entries by id only, so no request can make the server
//! open a file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::{bail, Context, Result};
use firth_models::classifier::Bundle;
use firth_models::lm::LanguageModel;
use firth_models::tagger::{TagVocab, Tagger};
use firth_models::translate::pipeline::Segmenter;
use firth_models::translate::{TransVocab, Translator};
use firth_text::Vocab;
use firth_vectors::embeddings::Embeddings;
use serde::Serialize;

use crate::nearest::Nearest;

/// The kinds of thing the page has a tab for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Vectors,
    Ngram,
    Lm,
    Tagger,
    Classifier,
    Translator,
    Insight,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Vectors => "vectors",
            Kind::Ngram => "ngram",
            Kind::Lm => "lm",
            Kind::Tagger => "tagger",
            Kind::Classifier => "classifier",
            Kind::Translator => "translator",
            Kind::Insight => "insight",
        }
    }
}

/// A loaded entry. Neural models run with `&mut self` (their forward reuses buffers), so each
/// sits behind a mutex; vectors and n-gram models are read-only and shared.
pub enum Entry {
    Vectors {
        e: Arc<Embeddings>,
        nearest: Nearest,
    },
    Ngram(Arc<firth_ngram::Model>),
    Lm(Mutex<(LanguageModel<f32>, Vocab)>),
    Tagger(Mutex<(Tagger<f32>, TagVocab)>),
    Classifier(Mutex<Bundle>),
    Translator(
        Mutex<(
            Translator<f32>,
            TransVocab,
            firth_models::translate::Subwords,
            Segmenter,
        )>,
    ),
    Insight(Insight),
}

impl Entry {
    pub fn kind(&self) -> Kind {
        match self {
            Entry::Vectors { .. } => Kind::Vectors,
            Entry::Ngram(_) => Kind::Ngram,
            Entry::Lm(_) => Kind::Lm,
            Entry::Tagger(_) => Kind::Tagger,
            Entry::Classifier(_) => Kind::Classifier,
            Entry::Translator(_) => Kind::Translator,
            Entry::Insight(_) => Kind::Insight,
        }
    }
}

/// The CSV files of a run directory, read at start (they are small), as columns.
#[derive(Clone, Debug, Serialize)]
pub struct Insight {
    pub files: Vec<CsvTable>,
}

#[derive(Clone, Debug, Serialize)]
pub struct CsvTable {
    /// The file's name inside the run directory.
    pub name: String,
    /// "metrics", "gradients" or "agreement".
    pub kind: &'static str,
    pub header: Vec<String>,
    /// Rows of numbers; a cell that is not a number is null.
    pub rows: Vec<Vec<Option<f64>>>,
}

/// One line of `GET /api/models`.
#[derive(Clone, Debug, Serialize)]
pub struct Listed {
    pub id: String,
    pub kind: Kind,
    /// What it is, in a few words (sizes, architecture).
    pub about: String,
}

pub struct Registry {
    pub entries: BTreeMap<String, Entry>,
    pub listed: Vec<Listed>,
}

impl Registry {
    /// Loads every path; a path firth cannot read is an error naming it.
    pub fn load(paths: &[PathBuf]) -> Result<Registry> {
        if paths.is_empty() {
            bail!("give at least one vector file, n-gram model, model directory or run directory");
        }
        let mut r = Registry {
            entries: BTreeMap::new(),
            listed: vec![],
        };
        for p in paths {
            let found = load_path(p).with_context(|| format!("firth serve: {}", p.display()))?;
            if found.is_empty() {
                bail!(
                    "{}: nothing firth can show (expected a vector file, an ARPA or firth n-gram model, a directory with model.safetensors, or a run directory with metrics.csv or gradients-*.csv)",
                    p.display()
                );
            }
            for (entry, about) in found {
                let id = r.fresh_id(p, entry.kind());
                r.insert(id, entry, about);
            }
        }
        Ok(r)
    }

    fn insert(&mut self, id: String, entry: Entry, about: String) {
        self.listed.push(Listed {
            id: id.clone(),
            kind: entry.kind(),
            about,
        });
        self.entries.insert(id, entry);
    }

    /// A short id from the path's last component: lowercase letters, digits and '-', with a
    /// suffix when taken (the kind for a second entry of one path, then a number).
    fn fresh_id(&self, p: &Path, kind: Kind) -> String {
        let stem = p
            .file_stem()
            .map(|s| s.to_owned())
            .or_else(|| p.canonicalize().ok()?.file_name().map(|s| s.to_owned()))
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or_default();
        let mut base: String = stem
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '-'
                }
            })
            .collect::<String>()
            .split('-')
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join("-");
        base.truncate(40);
        if base.is_empty() {
            base = kind.name().to_string();
        }
        let mut id = base.clone();
        if self.entries.contains_key(&id) {
            id = format!("{base}-{}", kind.name());
        }
        let mut n = 2;
        while self.entries.contains_key(&id) {
            id = format!("{base}-{n}");
            n += 1;
        }
        id
    }
}

/// The entries one path holds, each with its description.
fn load_path(p: &Path) -> Result<Vec<(Entry, String)>> {
    let meta = std::fs::metadata(p).with_context(|| format!("cannot read {}", p.display()))?;
    let mut out = vec![];
    if meta.is_dir() {
        let model = p.join(firth_models::trainer::MODEL);
        if model.exists() {
            out.push(load_model_dir(p, &model)?);
        }
        if let Some(i) = read_insight(p)? {
            let about = i
                .files
                .iter()
                .map(|f| f.name.as_str())
                .collect::<Vec<_>>()
                .join(", ");
            out.push((Entry::Insight(i), about));
        }
        return Ok(out);
    }
    if looks_like_ngram(p)? {
        let m = firth_ngram::Model::load(p)?;
        let about = format!(
            "{}-gram model, {} words{}",
            m.order(),
            m.vocab_size(),
            if m.is_chars() { ", characters" } else { "" }
        );
        out.push((Entry::Ngram(Arc::new(m)), about));
        return Ok(out);
    }
    let e = firth_vectors::formats::load(p)?;
    if e.is_empty() {
        bail!("{}: no vectors in the file", p.display());
    }
    let about = format!("{} words, {} dimensions", e.len(), e.dim);
    let e = Arc::new(e);
    let nearest = Nearest::start(e.clone(), &p.display().to_string())?;
    out.push((Entry::Vectors { e, nearest }, about));
    Ok(out)
}

/// A firth binary n-gram model, or an ARPA file (its first non-blank line is `\data\`).
fn looks_like_ngram(p: &Path) -> Result<bool> {
    if firth_ngram::model::is_binary(p)? {
        return Ok(true);
    }
    use std::io::Read;
    let mut head = vec![0u8; 4096];
    let n = std::fs::File::open(p)
        .and_then(|mut f| f.read(&mut head))
        .with_context(|| format!("cannot read {}", p.display()))?;
    if head.starts_with(&[0x1f, 0x8b]) {
        // gzip: only ARPA files are read compressed.
        return Ok(p.to_string_lossy().contains(".arpa"));
    }
    let text = String::from_utf8_lossy(&head[..n]);
    Ok(text.trim_start().starts_with("\\data\\"))
}

fn load_model_dir(dir: &Path, model: &Path) -> Result<(Entry, String)> {
    let t = firth_nn::checkpoint::Tensors::load(model)?;
    let kind = t.meta("firth", model)?.to_string();
    match kind.as_str() {
        "lm-model-v1" => {
            let (m, v) = LanguageModel::load(dir)?;
            let c = &m.config;
            let about = format!(
                "{:?} language model, {} layer(s) of {}, {:?} level, {} tokens",
                c.arch,
                c.layers,
                c.hidden,
                c.level,
                v.len()
            )
            .to_lowercase();
            Ok((Entry::Lm(Mutex::new((m, v))), about))
        }
        "tagger-model-v1" => {
            let (m, v) = Tagger::from_tensors(&t, model)?;
            let about = format!("tagger, {} tags, {} words", v.tags.len(), v.words.len());
            Ok((Entry::Tagger(Mutex::new((m, v))), about))
        }
        "classifier-model-v1" => {
            let b = Bundle::from_tensors(&t, model)?;
            let about = format!(
                "classifier, labels {}, {:?} pooling",
                b.labels.join("/"),
                b.model.config.pooling
            )
            .to_lowercase();
            Ok((Entry::Classifier(Mutex::new(b)), about))
        }
        "translator-model-v1" => {
            let (m, v, s) = firth_models::translate::load_tensors(&t, model)?;
            let seg = firth_models::translate::pipeline::segmenter(dir, &s)?;
            let about = format!(
                "translator, {} source and {} target tokens",
                v.src.len(),
                v.tgt.len()
            );
            Ok((Entry::Translator(Mutex::new((m, v, s, seg))), about))
        }
        other => bail!(
            "{}: a {other} file, which firth serve does not show (it shows lm, tagger, classifier and translator models)",
            model.display()
        ),
    }
}

/// metrics.csv, gradients-*.csv and agreement.csv of a run directory, if any.
fn read_insight(dir: &Path) -> Result<Option<Insight>> {
    use firth_models::insight::{Csv, CsvKind};
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.ends_with(".csv"))
        .collect();
    names.sort();
    let mut files = vec![];
    for name in names {
        let path = dir.join(&name);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let Ok(csv) = Csv::parse(&text) else { continue };
        let kind = match csv.kind() {
            Some(CsvKind::Metrics) => "metrics",
            Some(CsvKind::Gradients) => "gradients",
            Some(CsvKind::Agreement) => "agreement",
            None => continue,
        };
        let cols: Vec<Vec<Option<f64>>> = csv
            .header
            .iter()
            .map(|h| csv.column(h).unwrap_or_default())
            .collect();
        let n = cols.iter().map(|c| c.len()).max().unwrap_or(0);
        let rows = (0..n)
            .map(|i| cols.iter().map(|c| c.get(i).copied().flatten()).collect())
            .collect();
        files.push(CsvTable {
            name,
            kind,
            header: csv.header.clone(),
            rows,
        });
    }
    Ok((!files.is_empty()).then_some(Insight { files }))
}
