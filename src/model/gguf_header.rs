//! The GGUF header as we read it ourselves, before candle does: the values candle's reader
//! trusts without a check. An alignment of 0 divides by zero inside it, a huge one overflows,
//! and a tensor listed twice silently collapses into one entry of its map. Nothing here
//! allocates by a size the file declares: strings and arrays are skipped by seeking, and
//! every length is checked against the file's size first.

use std::io::{Read, Seek, SeekFrom};

/// What the header says that candle's reader does not check.
#[derive(Debug, Clone, PartialEq)]
pub struct HeaderFacts {
    pub version: u32,
    /// Entries in the tensor table (names may repeat; candle keeps one per name).
    pub tensor_count: u64,
    /// general.alignment, when the file sets it.
    pub alignment: Option<u64>,
}

/// The most alignment a file may ask for.
const MAX_ALIGNMENT: u64 = 1 << 20;
const MAGIC: &[u8; 4] = b"GGUF";

/// Read the header and the metadata up to the tensor table. Errors say what is wrong, in
/// words; the caller names the file.
pub fn scan(file: &mut (impl Read + Seek), file_len: u64) -> Result<HeaderFacts, String> {
    let mut r = Reader { file, file_len };
    let mut magic = [0u8; 4];
    r.file
        .read_exact(&mut magic)
        .map_err(|_| "shorter than a GGUF header".to_string())?;
    if &magic != MAGIC {
        return Err("no GGUF magic at the start".into());
    }
    let version = r.u32()?;
    if !(1..=3).contains(&version) {
        return Err(format!(
            "GGUF version {version}: this reader knows versions 1 to 3"
        ));
    }
    let wide = version >= 2; // v1 counts and lengths are u32
    let tensor_count = r.count(wide)?;
    let kv_count = r.count(wide)?;
    let mut alignment = None;
    for _ in 0..kv_count {
        let key = r.string(wide)?;
        let value_type = r.u32()?;
        if key.as_deref() == Some("general.alignment") {
            let a = r.integer(value_type)?;
            if a == 0 || a > MAX_ALIGNMENT || !a.is_power_of_two() {
                return Err(format!(
                    "general.alignment = {a}: must be a power of two from 1 to {MAX_ALIGNMENT}"
                ));
            }
            alignment = Some(a);
        } else {
            r.skip_value(value_type, wide, 0)?;
        }
    }
    Ok(HeaderFacts {
        version,
        tensor_count,
        alignment,
    })
}

struct Reader<'a, F> {
    file: &'a mut F,
    file_len: u64,
}

impl<F: Read + Seek> Reader<'_, F> {
    fn bytes<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let mut b = [0u8; N];
        self.file
            .read_exact(&mut b)
            .map_err(|_| "metadata ends before the file's header says".to_string())?;
        Ok(b)
    }

    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.bytes()?))
    }

    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(self.bytes()?))
    }

    fn count(&mut self, wide: bool) -> Result<u64, String> {
        if wide {
            self.u64()
        } else {
            self.u32().map(u64::from)
        }
    }

    /// Move on `n` bytes, refusing to go past the end of the file.
    fn skip(&mut self, n: u64) -> Result<(), String> {
        let at = self.file.stream_position().map_err(|e| e.to_string())?;
        match at.checked_add(n) {
            Some(end) if end <= self.file_len => {
                self.file
                    .seek(SeekFrom::Start(end))
                    .map_err(|e| e.to_string())?;
                Ok(())
            }
            _ => Err(format!(
                "metadata declares {n} bytes at byte {at}, past the end of the file ({} bytes)",
                self.file_len
            )),
        }
    }

    /// A string: its text when short enough to be a key, else skipped (None).
    fn string(&mut self, wide: bool) -> Result<Option<String>, String> {
        let len = self.count(wide)?;
        if len > 256 {
            self.skip(len)?;
            return Ok(None);
        }
        let mut text = vec![0u8; len as usize];
        self.file
            .read_exact(&mut text)
            .map_err(|_| "metadata ends inside a string".to_string())?;
        Ok(String::from_utf8(text).ok())
    }

    /// An integer value of any integer type (for general.alignment).
    fn integer(&mut self, value_type: u32) -> Result<u64, String> {
        Ok(match value_type {
            0 => u64::from(self.bytes::<1>()?[0]),
            1 => i8::from_le_bytes(self.bytes()?).max(0) as u64,
            2 => u64::from(u16::from_le_bytes(self.bytes()?)),
            3 => i16::from_le_bytes(self.bytes()?).max(0) as u64,
            4 => u64::from(self.u32()?),
            5 => i32::from_le_bytes(self.bytes()?).max(0) as u64,
            10 => self.u64()?,
            11 => i64::from_le_bytes(self.bytes()?).max(0) as u64,
            other => {
                return Err(format!(
                    "general.alignment has value type {other}, not an integer"
                ))
            }
        })
    }

    fn skip_value(&mut self, value_type: u32, wide: bool, depth: u32) -> Result<(), String> {
        match value_type {
            0 | 1 | 7 => self.skip(1),
            2 | 3 => self.skip(2),
            4..=6 => self.skip(4),
            10..=12 => self.skip(8),
            8 => {
                let len = self.count(wide)?;
                self.skip(len)
            }
            9 => {
                if depth > 8 {
                    return Err("metadata arrays nested more than 8 deep".into());
                }
                let item_type = self.u32()?;
                let n = self.count(wide)?;
                let fixed = match item_type {
                    0 | 1 | 7 => Some(1),
                    2 | 3 => Some(2),
                    4..=6 => Some(4),
                    10..=12 => Some(8),
                    _ => None,
                };
                match fixed {
                    Some(size) => self.skip(n.saturating_mul(size)),
                    // Strings and arrays: each item takes at least 4 bytes, so a false count
                    // reaches the end of the file within file_len / 4 steps.
                    None => (0..n).try_for_each(|_| self.skip_value(item_type, wide, depth + 1)),
                }
            }
            other => Err(format!("metadata value type {other} is not a GGUF type")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    /// A v3 header with these (key, value type, value bytes) entries and a tensor count.
    fn header(tensors: u64, kvs: &[(&str, u32, Vec<u8>)]) -> Vec<u8> {
        let mut b = b"GGUF".to_vec();
        b.extend(3u32.to_le_bytes());
        b.extend(tensors.to_le_bytes());
        b.extend((kvs.len() as u64).to_le_bytes());
        for (k, t, v) in kvs {
            b.extend((k.len() as u64).to_le_bytes());
            b.extend(k.as_bytes());
            b.extend(t.to_le_bytes());
            b.extend(v);
        }
        b
    }

    fn scan_bytes(b: &[u8]) -> Result<HeaderFacts, String> {
        scan(&mut Cursor::new(b), b.len() as u64)
    }

    #[test]
    fn reads_counts_and_alignment_past_other_values() {
        let mut text = 5u64.to_le_bytes().to_vec();
        text.extend(b"llama");
        let mut array = 4u32.to_le_bytes().to_vec(); // u32 items
        array.extend(3u64.to_le_bytes());
        array.extend([0u8; 12]);
        let b = header(
            7,
            &[
                ("general.architecture", 8, text),
                ("some.list", 9, array),
                ("general.alignment", 4, 32u32.to_le_bytes().to_vec()),
            ],
        );
        let facts = scan_bytes(&b).unwrap();
        assert_eq!((facts.tensor_count, facts.alignment), (7, Some(32)));
    }

    #[test]
    fn refuses_what_candle_would_trust() {
        for (a, why) in [(0u32, "general.alignment = 0"), (24, "power of two")] {
            let b = header(1, &[("general.alignment", 4, a.to_le_bytes().to_vec())]);
            assert!(scan_bytes(&b).unwrap_err().contains(why), "{a}");
        }
        // An array claiming 2^60 items, a string claiming 2^40 bytes: refused, not allocated.
        let mut huge = 4u32.to_le_bytes().to_vec();
        huge.extend((1u64 << 60).to_le_bytes());
        let b = header(1, &[("x", 9, huge)]);
        assert!(scan_bytes(&b).unwrap_err().contains("past the end"));
        let b = header(1, &[("x", 8, (1u64 << 40).to_le_bytes().to_vec())]);
        assert!(scan_bytes(&b).unwrap_err().contains("past the end"));
        let mut strings = 8u32.to_le_bytes().to_vec();
        strings.extend(u64::MAX.to_le_bytes());
        let b = header(1, &[("x", 9, strings)]);
        assert!(scan_bytes(&b).is_err());
        assert!(scan_bytes(b"GGML....").unwrap_err().contains("magic"));
        assert!(scan_bytes(&header(1, &[("x", 99, vec![])]))
            .unwrap_err()
            .contains("type 99"));
        let mut truncated = header(1, &[("general.alignment", 4, 32u32.to_le_bytes().to_vec())]);
        truncated.truncate(truncated.len() - 2);
        assert!(scan_bytes(&truncated).is_err());
    }
}
