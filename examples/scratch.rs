use candle_core::{Tensor, Device};
fn main() {
    let mut m = inferbench::model::load(&Default::default(), &Device::Cpu).unwrap();
    let t = m.tokenizer.apply_chat_template("What is the capital of France?").unwrap();
    let ids = m.tokenizer.encode(&t).unwrap();
    let full = m.model.forward(&Tensor::new(ids.as_slice(), &Device::Cpu).unwrap().unsqueeze(0).unwrap(), 0).unwrap();
    let mut v: Vec<(usize, f32)> = full.squeeze(0).unwrap().to_vec1::<f32>().unwrap().into_iter().enumerate().collect();
    v.sort_by(|a,b| b.1.partial_cmp(&a.1).unwrap());
    for (i, l) in &v[..5] { println!("{i} {:?} {l}", m.tokenizer.decode(&[*i as u32]).unwrap()); }
}
