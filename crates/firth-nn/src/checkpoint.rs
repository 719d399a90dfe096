//! Checkpoints: tensors in safetensors, metadata as strings, written atomically.
//!
//! A checkpoint is one file, so it is either entirely the old one or entirely the new one:
//! we write `NAME.tmp`, fsync it, and rename it over `NAME`. A process killed at any moment
//! leaves a loadable checkpoint behind.

use crate::param::Param;
use crate::Real;
use anyhow::{bail, Context, Result};
use safetensors::tensor::{Dtype, TensorView};
use safetensors::SafeTensors;
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::Path;

/// Named f32 tensors plus string metadata.
#[derive(Clone, Debug, Default)]
pub struct Tensors {
    pub tensors: BTreeMap<String, (Vec<usize>, Vec<f32>)>,
    pub metadata: BTreeMap<String, String>,
}

impl Tensors {
    pub fn insert(&mut self, name: &str, shape: &[usize], data: Vec<f32>) {
        assert_eq!(
            shape.iter().product::<usize>(),
            data.len(),
            "tensor {name}: shape does not match data"
        );
        self.tensors
            .insert(name.to_string(), (shape.to_vec(), data));
    }

    pub fn insert_params<T: Real>(&mut self, prefix: &str, params: &[&Param<T>]) {
        for p in params {
            self.insert(
                &format!("{prefix}{}", p.name),
                &p.shape,
                p.value.iter().map(|v| v.to_f32()).collect(),
            );
        }
    }

    /// Copies stored tensors into `params`, checking that every one is there with its shape.
    pub fn load_params<T: Real>(
        &self,
        prefix: &str,
        params: &mut [&mut Param<T>],
        path: &Path,
    ) -> Result<()> {
        for p in params.iter_mut() {
            let name = format!("{prefix}{}", p.name);
            let (shape, data) = self.get(&name, path)?;
            if shape != &p.shape[..] {
                bail!(
                    "{}: tensor {name} has shape {shape:?} but the model expects {:?}; \
                     the checkpoint was written by a model of another size",
                    path.display(),
                    p.shape
                );
            }
            for (v, &d) in p.value.iter_mut().zip(data) {
                *v = T::from_f32(d);
            }
        }
        Ok(())
    }

    /// Stores an optimizer's step count and moments (Adam's m and v; SGD has none), so a
    /// resumed run continues the same update sequence.
    pub fn insert_optimizer(&mut self, opt: &crate::optim::Optimizer<f32>) {
        self.metadata
            .insert("optimizer_steps".into(), opt.steps.to_string());
        for (i, (m, v)) in opt.m.iter().zip(&opt.v).enumerate() {
            self.insert(&format!("opt.m.{i}"), &[m.len()], m.clone());
            self.insert(&format!("opt.v.{i}"), &[v.len()], v.clone());
        }
    }

    /// Restores what [`Tensors::insert_optimizer`] stored, checking each moment against the
    /// parameter it belongs to (`lens`: the parameters' sizes, in the optimizer's order).
    pub fn load_optimizer(
        &self,
        opt: &mut crate::optim::Optimizer<f32>,
        lens: &[usize],
        path: &Path,
    ) -> Result<()> {
        opt.steps = self
            .meta("optimizer_steps", path)?
            .parse()
            .with_context(|| format!("{}: bad optimizer step count", path.display()))?;
        opt.m.clear();
        opt.v.clear();
        if opt.kind == crate::optim::OptimKind::Sgd || opt.steps == 0 {
            return Ok(());
        }
        for (i, &len) in lens.iter().enumerate() {
            let (_, m) = self.get(&format!("opt.m.{i}"), path)?;
            let (_, v) = self.get(&format!("opt.v.{i}"), path)?;
            if m.len() != len || v.len() != len {
                bail!("{}: optimizer state {i} has the wrong size", path.display());
            }
            opt.m.push(m.to_vec());
            opt.v.push(v.to_vec());
        }
        Ok(())
    }

    pub fn get(&self, name: &str, path: &Path) -> Result<(&[usize], &[f32])> {
        match self.tensors.get(name) {
            Some((s, d)) => Ok((s, d)),
            None => bail!(
                "{}: tensor {name} is missing; is this a checkpoint of the same model?",
                path.display()
            ),
        }
    }

    pub fn meta(&self, key: &str, path: &Path) -> Result<&str> {
        match self.metadata.get(key) {
            Some(v) => Ok(v),
            None => bail!(
                "{}: metadata field {key:?} is missing; not a firth checkpoint?",
                path.display()
            ),
        }
    }

    pub fn save(&self, path: &Path) -> Result<()> {
        let bytes: Vec<Vec<u8>> = self
            .tensors
            .values()
            .map(|(_, d)| d.iter().flat_map(|v| v.to_le_bytes()).collect())
            .collect();
        let views: Vec<(String, TensorView)> = self
            .tensors
            .iter()
            .zip(&bytes)
            .map(|((name, (shape, _)), b)| {
                Ok((name.clone(), TensorView::new(Dtype::F32, shape.clone(), b)?))
            })
            .collect::<Result<_, safetensors::SafeTensorError>>()
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        let meta: HashMap<String, String> = self.metadata.clone().into_iter().collect();
        let data = safetensors::serialize(views, &Some(meta))
            .map_err(|e| anyhow::anyhow!("serialising {}: {e:?}", path.display()))?;
        write_atomic(path, &data)
    }

    pub fn load(path: &Path) -> Result<Tensors> {
        let bytes = std::fs::read(path)
            .with_context(|| format!("cannot read checkpoint {}", path.display()))?;
        let st = SafeTensors::deserialize(&bytes).map_err(|e| {
            anyhow::anyhow!(
                "{} is not a valid checkpoint (corrupt or truncated safetensors: {e:?})",
                path.display()
            )
        })?;
        let (_, header) = SafeTensors::read_metadata(&bytes)
            .map_err(|e| anyhow::anyhow!("{}: {e:?}", path.display()))?;
        let mut out = Tensors::default();
        if let Some(m) = header.metadata() {
            out.metadata = m.clone().into_iter().collect();
        }
        for (name, view) in st.tensors() {
            if view.dtype() != Dtype::F32 {
                bail!(
                    "{}: tensor {name} is {:?}, expected F32",
                    path.display(),
                    view.dtype()
                );
            }
            let data = view
                .data()
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            out.tensors.insert(name, (view.shape().to_vec(), data));
        }
        Ok(out)
    }
}

/// Writes `data` to `path` through a temporary file in the same directory and a rename.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create directory {}", dir.display()))?;
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        path.file_name().and_then(|s| s.to_str()).unwrap_or("out"),
        std::process::id()
    ));
    let result = (|| -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("cannot write {}", path.display()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_corruption() {
        let dir = std::env::temp_dir().join(format!("firth-ckpt-{}", std::process::id()));
        let path = dir.join("c.safetensors");
        let mut t = Tensors::default();
        t.insert("a", &[2, 2], vec![1.0, 2.0, 3.0, -4.5]);
        t.metadata.insert("k".into(), "v".into());
        t.save(&path).unwrap();
        let back = Tensors::load(&path).unwrap();
        assert_eq!(back.tensors, t.tensors);
        assert_eq!(back.meta("k", &path).unwrap(), "v");
        let mut p = Param::<f32>::zeros("a", &[4]);
        let err = back
            .load_params("", &mut [&mut p], &path)
            .unwrap_err()
            .to_string();
        assert!(err.contains("shape"), "{err}");
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 3]).unwrap();
        let err = Tensors::load(&path).unwrap_err().to_string();
        assert!(err.contains("not a valid checkpoint"), "{err}");
        std::fs::write(&path, b"garbage").unwrap();
        assert!(Tensors::load(&path).is_err());
    }
}
