//! Telling model files apart by their first bytes, not their names.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use anyhow::{bail, Context, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    Gguf,
    Safetensors,
    /// A JSON document (a config.json, for dummy weights).
    Json,
}

/// Read the magic bytes of `path` and say what it is, or why it is none of the formats we load.
pub fn detect_format(path: &Path) -> Result<FileFormat> {
    let mut file = File::open(path).with_context(|| format!("{}: cannot open", path.display()))?;
    let mut head = [0u8; 9];
    let mut read = 0;
    while read < head.len() {
        let n = file
            .read(&mut head[read..])
            .with_context(|| format!("{}: cannot read", path.display()))?;
        if n == 0 {
            break;
        }
        read += n;
    }
    let head = &head[..read];
    if head.starts_with(b"GGUF") {
        return Ok(FileFormat::Gguf);
    }
    // safetensors: an 8-byte little-endian header length, then a JSON header.
    if head.len() == 9 && head[8] == b'{' {
        let header_len = u64::from_le_bytes(head[..8].try_into().expect("8 bytes"));
        let file_len = file.metadata().map(|m| m.len()).unwrap_or(0);
        if header_len + 8 > file_len {
            bail!(
                "{}: truncated safetensors file (header says {} bytes, file has {})",
                path.display(),
                header_len + 8,
                file_len
            );
        }
        return Ok(FileFormat::Safetensors);
    }
    if head
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|b| *b == b'{')
    {
        return Ok(FileFormat::Json);
    }
    if head.is_empty() {
        bail!("{}: the file is empty", path.display());
    }
    bail!(
        "{}: not a model file: neither GGUF (no 'GGUF' magic) nor safetensors (no JSON header)",
        path.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn file_with(bytes: &[u8]) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(bytes).unwrap();
        f
    }

    #[test]
    fn recognises_each_format_by_content() {
        assert_eq!(
            detect_format(file_with(b"GGUF\x03\0\0\0rest").path()).unwrap(),
            FileFormat::Gguf
        );
        let header = b"{\"a\":1}";
        let mut st = (header.len() as u64).to_le_bytes().to_vec();
        st.extend_from_slice(header);
        assert_eq!(
            detect_format(file_with(&st).path()).unwrap(),
            FileFormat::Safetensors
        );
        assert_eq!(
            detect_format(file_with(b"  {\"hidden_size\": 8}").path()).unwrap(),
            FileFormat::Json
        );
    }

    #[test]
    fn rejects_other_files_with_the_reason() {
        let err = detect_format(file_with(b"PK\x03\x04zipzipzip").path()).unwrap_err();
        assert!(err.to_string().contains("neither GGUF"), "{err}");
        let err = detect_format(file_with(b"").path()).unwrap_err();
        assert!(err.to_string().contains("empty"), "{err}");
        let mut st = 1000u64.to_le_bytes().to_vec();
        st.extend_from_slice(b"{\"a\"");
        let err = detect_format(file_with(&st).path()).unwrap_err();
        assert!(err.to_string().contains("truncated"), "{err}");
    }
}
