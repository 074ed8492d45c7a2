use relgrad::*;
fn main() {
    let a: Vec<String> = std::env::args().collect();
    let d: usize = a[1].parse().unwrap();
    let reps: usize = a[2].parse().unwrap();
    let b = 100;
    let l = 2;
    let be = Faer::new(Threads::Fixed(1));
    let model: InvertibleMlp<f32> = Init::Orthogonal { seed: 1 }
        .build(
            init::Architecture {
                dim: d,
                n_layers: l,
                activation: Activation::default(),
                base: BaseDensity::Normal,
                use_bias: true,
            },
            &be,
            None,
        )
        .unwrap();
    let x = Mat::<f32>::from_fn(b, d, |i, j| ((i * 31 + j * 17) % 13) as f32 / 6.0 - 1.0);
    let mut ws = Workspace::<f32, Faer>::new(&model, b);
    for _ in 0..reps {
        relative_gradient(&model, &be, x.as_ref(), &mut ws).unwrap();
    }
}
