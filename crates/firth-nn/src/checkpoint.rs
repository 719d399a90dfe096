//! Checkpoints: tensors in safetensors, metadata as strings, written atomically.
//!
//! A checkpoint is one file, so it is either entirely the old one or entirely the new one:
//! we write `NAME.tmp`, fsync it, and rename it over `NAME`. A process killed at any moment
//! leaves a loadable checkpoint behind.
//!
//! Every file carries a CRC-32 of its tensors (names, shapes, values) and metadata in the
//! metadata field `crc32`, checked on load together with the values being finite, so a damaged
//! file is refused instead of producing NaN or garbage. Files written before the checksum
//! existed load without that check; [`Tensors::verified`] tells which.

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
    /// Whether [`Tensors::load`] found and checked a checksum (false for old files).
    pub verified: bool,
}

/// Metadata key of the checksum; not itself covered by it.
const CRC_KEY: &str = "crc32";

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

    /// CRC-32 of every tensor (name, shape, little-endian values) and metadata entry but the
    /// checksum itself, in name order.
    fn content_crc(&self) -> u32 {
        let mut h = crc32fast::Hasher::new();
        let mut field = |b: &[u8]| {
            h.update(&(b.len() as u64).to_le_bytes());
            h.update(b);
        };
        for (name, (shape, data)) in &self.tensors {
            field(name.as_bytes());
            let dims: Vec<u8> = shape
                .iter()
                .flat_map(|&d| (d as u64).to_le_bytes())
                .collect();
            field(&dims);
            let mut bytes = Vec::with_capacity(data.len() * 4);
            for v in data {
                bytes.extend_from_slice(&v.to_le_bytes());
            }
            field(&bytes);
        }
        for (k, v) in &self.metadata {
            if k != CRC_KEY {
                field(k.as_bytes());
                field(v.as_bytes());
            }
        }
        h.finalize()
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
        let mut meta: HashMap<String, String> = self.metadata.clone().into_iter().collect();
        meta.insert(CRC_KEY.into(), format!("{:08x}", self.content_crc()));
        let data = safetensors::serialize(views, &Some(meta))
            .map_err(|e| anyhow::anyhow!("serialising {}: {e:?}", path.display()))?;
        write_atomic(path, &data)
    }

    /// Reads a file written by [`Tensors::save`], verifying its checksum (when it has one) and
    /// that every value is finite.
    pub fn load(path: &Path) -> Result<Tensors> {
        let bytes = std::fs::read(path)
            .with_context(|| format!("cannot read checkpoint {}", path.display()))?;
        Tensors::from_bytes(&bytes, path)
    }

    /// [`Tensors::load`] on the bytes of a file; `path` names it in errors.
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Tensors> {
        let damaged = |what: String| {
            anyhow::anyhow!(
                "{} is damaged ({what}); restore a copy or retrain (a run's checkpoint.safetensors holds the last good state)",
                path.display()
            )
        };
        let st = SafeTensors::deserialize(bytes).map_err(|e| {
            damaged(format!(
                "not a complete safetensors file, it is corrupt or truncated: {e:?}"
            ))
        })?;
        let (_, header) = SafeTensors::read_metadata(bytes)
            .map_err(|e| damaged(format!("unreadable safetensors header: {e:?}")))?;
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
            let data: Vec<f32> = view
                .data()
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            out.tensors.insert(name, (view.shape().to_vec(), data));
        }
        if let Some(stored) = out.metadata.get(CRC_KEY) {
            let computed = format!("{:08x}", out.content_crc());
            if *stored != computed {
                return Err(damaged(format!(
                    "checksum mismatch: stored {stored}, computed {computed}"
                )));
            }
            out.verified = true;
        } else if out.metadata.keys().any(|k| bits_apart(k, CRC_KEY) <= 2) {
            // The key itself was hit: treat it as damage, not as a file from before checksums.
            return Err(damaged("the checksum's key is corrupt".into()));
        }
        for (name, (_, data)) in &out.tensors {
            if let Some(i) = data.iter().position(|v| !v.is_finite()) {
                return Err(damaged(format!(
                    "tensor {name} has the non-finite value {} at index {i}",
                    data[i]
                )));
            }
        }
        Ok(out)
    }
}

/// Bits in which two equally long strings differ (`u32::MAX` when the lengths differ).
fn bits_apart(a: &str, b: &str) -> u32 {
    if a.len() != b.len() {
        return u32::MAX;
    }
    a.bytes()
        .zip(b.bytes())
        .map(|(x, y)| (x ^ y).count_ones())
        .sum()
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
    remove_stale_temps(dir, path);
    Ok(())
}

/// Removes temporary files of `path` left by writers that were killed mid-write (their process
/// is gone), so an interrupted run followed by `--resume` leaves no litter.
fn remove_stale_temps(dir: &Path, path: &Path) {
    let Some(name) = path.file_name().and_then(|s| s.to_str()) else {
        return;
    };
    let prefix = format!(".{name}.");
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let file = entry.file_name();
        let Some(pid) = file
            .to_str()
            .and_then(|f| f.strip_prefix(&prefix))
            .and_then(|f| f.strip_suffix(".tmp"))
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != std::process::id() && !process_alive(pid) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

#[cfg(target_os = "linux")]
fn process_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// Without /proc we cannot tell, so nothing is removed.
#[cfg(not(target_os = "linux"))]
fn process_alive(_pid: u32) -> bool {
    true
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
        assert!(back.verified);
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
        assert!(err.contains("is damaged"), "{err}");
        std::fs::write(&path, b"garbage").unwrap();
        assert!(Tensors::load(&path).is_err());
    }

    #[test]
    fn temporaries_of_dead_writers_are_removed() {
        let dir = std::env::temp_dir().join(format!("firth-ckpt-stale-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // No process has a PID this large (Linux caps PIDs at 2^22).
        let stale = dir.join(".c.safetensors.4294967295.tmp");
        let other = dir.join(".d.safetensors.4294967295.tmp");
        std::fs::write(&stale, b"half").unwrap();
        std::fs::write(&other, b"half").unwrap();
        write_atomic(&dir.join("c.safetensors"), b"whole").unwrap();
        assert_eq!(std::fs::read(dir.join("c.safetensors")).unwrap(), b"whole");
        assert_eq!(stale.exists(), !cfg!(target_os = "linux"));
        assert!(other.exists(), "only the written file's temporaries go");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn every_flipped_bit_and_non_finite_values_are_refused() {
        let dir = std::env::temp_dir().join(format!("firth-ckpt-flip-{}", std::process::id()));
        let path = dir.join("m.safetensors");
        let mut t = Tensors::default();
        t.insert("w", &[2, 3], vec![0.5, -1.0, 2.0, 0.0, 1e-3, 7.0]);
        t.insert("b", &[2], vec![0.25, -0.25]);
        t.metadata.insert("config".into(), "{\"hidden\":3}".into());
        t.save(&path).unwrap();
        let good = std::fs::read(&path).unwrap();
        for i in 0..good.len() {
            for bit in 0..8 {
                let mut bad = good.clone();
                bad[i] ^= 1 << bit;
                std::fs::write(&path, &bad).unwrap();
                let err = match Tensors::load(&path) {
                    Ok(_) => panic!(
                        "byte {i} bit {bit} loaded: {:?}",
                        String::from_utf8_lossy(&bad[..bad.len().min(300)])
                    ),
                    Err(e) => e.to_string(),
                };
                assert!(err.contains("is damaged"), "byte {i} bit {bit}: {err}");
            }
        }
        for cut in 0..good.len() {
            std::fs::write(&path, &good[..cut]).unwrap();
            let err = Tensors::load(&path).map(|_| ()).unwrap_err().to_string();
            assert!(err.contains("is damaged"), "cut at {cut}: {err}");
        }
        // A NaN saved by a buggy writer is refused even with a matching checksum.
        t.insert("w", &[2, 3], vec![0.5, f32::NAN, 2.0, 0.0, 1e-3, 7.0]);
        t.save(&path).unwrap();
        let err = Tensors::load(&path).map(|_| ()).unwrap_err().to_string();
        assert!(
            err.contains("tensor w has the non-finite value NaN at index 1"),
            "{err}"
        );
        // Files from before the checksum still load, unverified.
        let mut old = Tensors::default();
        old.insert("b", &[2], vec![0.25, -0.25]);
        let views = vec![(
            "b".to_string(),
            TensorView::new(Dtype::F32, vec![2], &[0, 0, 128, 62, 0, 0, 128, 190]).unwrap(),
        )];
        std::fs::write(&path, safetensors::serialize(views, &None).unwrap()).unwrap();
        let back = Tensors::load(&path).unwrap();
        assert!(!back.verified);
        assert_eq!(back.tensors, old.tensors);
        let _ = std::fs::remove_dir_all(dir);
    }
}
