use std::time::Instant;
fn main() {
    let (d, t) = (64usize, 256usize);
    let wave = |n: usize, f: f32| (0..n).map(|i| (i as f32 * f).sin()).collect::<Vec<_>>();
    let qs: Vec<Vec<f32>> = (0..3).map(|h| wave(d, 0.3 + h as f32)).collect();
    let qr: Vec<&[f32]> = qs.iter().map(|q| q.as_slice()).collect();
    let (keys, values) = (wave(t * d, 0.11), wave(t * d, 0.05));
    let mut s = Vec::new();
    let mut out = vec![0f32; 3 * d];
    let mut parts = [inferbench_distance::attention::Partial { max: 0.0, sum: 0.0 }; 3];
    for _ in 0..3 {
        let t0 = Instant::now();
        for _ in 0..10000 {
            inferbench_distance::attention::decode_group(
                &qr, &keys, &values, d, &mut s, &mut out, &mut parts,
            );
        }
        println!(
            "{:.2} us per kv head (x90 per step = {:.3} ms)",
            t0.elapsed().as_secs_f64() * 1e6 / 10000.0,
            t0.elapsed().as_secs_f64() * 1e3 / 10000.0 * 90.0
        );
    }
}
