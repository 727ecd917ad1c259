use inferbench_distance::q8::{self, Activations};
use std::time::Instant;
fn main() {
    let k = 576usize;
    let n: usize = 120_000;
    let row_bytes = k / 32 * 34;
    let mut w = vec![0u8; n * row_bytes];
    for (i, b) in w.iter_mut().enumerate() {
        *b = (i * 7 % 251) as u8;
    }
    for r in 0..n * k / 32 {
        w[r * 34] = 0;
        w[r * 34 + 1] = 0x3c;
    }
    for m in [1usize, 8] {
        let x: Vec<f32> = (0..m * k).map(|i| (i % 13) as f32 - 6.0).collect();
        let acts = Activations::quantise(&x, m, k);
        let mut out = vec![0f32; n * m];
        let mut best = f64::MAX;
        for _ in 0..7 {
            let t = Instant::now();
            if std::env::var_os("T2").is_some() {
                let half = n / 2;
                let (o1, o2) = out.split_at_mut(half * m);
                let (w1, w2) = w.split_at(half * row_bytes);
                std::thread::scope(|s| {
                    s.spawn(|| q8::matmul_rows(w1, &acts, o1));
                    q8::matmul_rows(w2, &acts, o2);
                });
            } else {
                q8::matmul_rows(&w, &acts, &mut out);
            }
            best = best.min(t.elapsed().as_secs_f64());
        }
        println!(
            "m={m}: {:.2} ms, {:.1} GB/s, {:.1} GMAC/s",
            best * 1e3,
            w.len() as f64 / best / 1e9,
            (n * k * m) as f64 / best / 1e9
        );
    }
}
