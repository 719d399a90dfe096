//! firth's safetensors files (models and checkpoints share the reader):
//! `firth_nn::checkpoint::Tensors::from_bytes`, which checks the checksum and finiteness.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = std::path::Path::new("fuzz.safetensors");
    let _ = firth_nn::checkpoint::Tensors::from_bytes(data, path);
});
