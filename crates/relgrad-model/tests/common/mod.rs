//! Shared helpers of the integration tests: the backend, random networks, synthetic data
//! and a rewriter of safetensors files (metadata and tensors).

#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use relgrad_core::init::Architecture;
use relgrad_core::{Activation, BaseDensity, Init, InvertibleMlp, Mat, Threads};
use relgrad_faer::Faer;
use safetensors::tensor::{Dtype, SafeTensors, TensorView};

/// The backend of every test: faer, one thread.
pub fn backend() -> Faer {
    Faer::new(Threads::Fixed(1))
}

/// A random `f64` network: orthogonal weights from `seed`, each weight column scaled by a
/// factor in `[0.6, 1.6)` (so the determinants are not 1) and biases in `[-0.5, 0.5)`.
pub fn random_mlp(
    dim: usize,
    n_layers: usize,
    activation: Activation,
    seed: u64,
) -> InvertibleMlp<f64> {
    let arch = Architecture {
        dim,
        n_layers,
        activation,
        base: BaseDensity::Normal,
        use_bias: true,
    };
    let mut m = Init::Orthogonal { seed }
        .build::<f64, Faer>(arch, &backend(), None)
        .expect("orthogonal start");
    let mut rng = StdRng::seed_from_u64(seed ^ 0xABCD);
    for layer in m.layers_mut() {
        for j in 0..dim {
            let s: f64 = rng.random_range(0.6..1.6);
            for i in 0..dim {
                let w = layer.weight.get(i, j);
                layer.weight.set(i, j, w * s);
            }
        }
        for b in layer.bias.iter_mut() {
            *b = rng.random_range(-0.5..0.5);
        }
    }
    m
}

/// A standard normal draw (Box-Muller).
pub fn normal(rng: &mut StdRng) -> f64 {
    let u: f64 = 1.0 - rng.random::<f64>();
    let v: f64 = rng.random();
    (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
}

/// `n` rows of a nonlinear 2-D distribution ("banana"), shifted and scaled away from the
/// standard normal so that the preprocessing has something to do.
pub fn banana(n: usize, seed: u64) -> Mat<f64> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut m = Mat::zeros(n, 2);
    for i in 0..n {
        let a = normal(&mut rng);
        let b = normal(&mut rng);
        m.set(i, 0, 3.0 + 2.0 * a);
        m.set(i, 1, -1.0 + 0.5 * b + 0.4 * a * a);
    }
    m
}

/// `n x d` rows of independent normals with column `j` of mean `j` and scale `1 + j`.
pub fn gaussian_rows(n: usize, d: usize, seed: u64) -> Mat<f64> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut m = Mat::zeros(n, d);
    for i in 0..n {
        for j in 0..d {
            m.set(i, j, j as f64 + (1.0 + j as f64) * normal(&mut rng));
        }
    }
    m
}

/// One tensor of a file being rewritten.
#[derive(Clone, Debug)]
pub struct RawTensor {
    pub dtype: Dtype,
    pub shape: Vec<usize>,
    pub data: Vec<u8>,
}

impl RawTensor {
    /// An `F64` tensor.
    pub fn f64s(shape: Vec<usize>, values: &[f64]) -> Self {
        Self {
            dtype: Dtype::F64,
            shape,
            data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        }
    }

    /// An `F32` tensor.
    pub fn f32s(shape: Vec<usize>, values: &[f32]) -> Self {
        Self {
            dtype: Dtype::F32,
            shape,
            data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        }
    }

    /// An `I32` tensor.
    pub fn i32s(shape: Vec<usize>, values: &[i32]) -> Self {
        Self {
            dtype: Dtype::I32,
            shape,
            data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        }
    }

    /// The values of an `F64` tensor.
    pub fn to_f64s(&self) -> Vec<f64> {
        assert_eq!(self.dtype, Dtype::F64);
        self.data
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
            .collect()
    }

    /// Sets entry `k` of an `F32` or `F64` tensor.
    pub fn set(&mut self, k: usize, v: f64) {
        match self.dtype {
            Dtype::F64 => self.data[8 * k..8 * k + 8].copy_from_slice(&v.to_le_bytes()),
            Dtype::F32 => self.data[4 * k..4 * k + 4].copy_from_slice(&(v as f32).to_le_bytes()),
            d => panic!("not a float tensor: {d:?}"),
        }
    }
}

/// A safetensors file taken apart: its metadata and tensors, to be edited and put back
/// together with the `safetensors` crate.
#[derive(Clone, Debug)]
pub struct Parts {
    pub meta: HashMap<String, String>,
    pub tensors: BTreeMap<String, RawTensor>,
}

impl Parts {
    /// Takes valid safetensors bytes apart.
    pub fn of(bytes: &[u8]) -> Self {
        let (_, header) = SafeTensors::read_metadata(bytes).expect("valid header");
        let st = SafeTensors::deserialize(bytes).expect("valid file");
        let tensors = st
            .tensors()
            .into_iter()
            .map(|(name, t)| {
                (
                    name,
                    RawTensor {
                        dtype: t.dtype(),
                        shape: t.shape().to_vec(),
                        data: t.data().to_vec(),
                    },
                )
            })
            .collect();
        Self {
            meta: header.metadata().clone().unwrap_or_default(),
            tensors,
        }
    }

    /// Puts the file back together.
    pub fn bytes(&self) -> Vec<u8> {
        let views: Vec<(String, TensorView<'_>)> = self
            .tensors
            .iter()
            .map(|(n, t)| {
                (
                    n.clone(),
                    TensorView::new(t.dtype, t.shape.clone(), &t.data).expect("consistent tensor"),
                )
            })
            .collect();
        safetensors::serialize(views, Some(self.meta.clone())).expect("serialise")
    }

    /// With metadata `key` set to `value`.
    pub fn with(mut self, key: &str, value: &str) -> Self {
        self.meta.insert(key.into(), value.into());
        self
    }

    /// Without metadata `key`.
    pub fn without(mut self, key: &str) -> Self {
        assert!(self.meta.remove(key).is_some(), "no key {key}");
        self
    }

    /// With tensor `name` replaced (or added).
    pub fn with_tensor(mut self, name: &str, t: RawTensor) -> Self {
        self.tensors.insert(name.into(), t);
        self
    }

    /// Without tensor `name`.
    pub fn without_tensor(mut self, name: &str) -> Self {
        assert!(self.tensors.remove(name).is_some(), "no tensor {name}");
        self
    }

    /// Tensor `name`.
    pub fn tensor(&self, name: &str) -> RawTensor {
        self.tensors[name].clone()
    }
}
