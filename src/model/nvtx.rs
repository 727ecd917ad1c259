//! NVTX ranges around each profiled op, so an Nsight Systems (nsys) timeline of `inferbench
//! profile` carries the same op names as its tables. The NVTX library is opened at run time,
//! nothing is linked: `INFERBENCH_NVTX_LIB` names one, else libnvToolsExt.so.1 (CUDA toolkits
//! up to 12) or libnvtx3interop.so.1 (PyPI's nvidia-nvtx wheels) is looked for on the loader's
//! path and under $CUDA_HOME/lib64 and /usr/local/cuda/lib64. Under nsys the library hands the
//! ranges to the profiler (NVTX_INJECTION64_PATH); otherwise each call returns at once. Without
//! a library, profiling works as before and says that the ranges are off.

use std::ffi::{c_char, c_int, CString};
use std::path::PathBuf;
use std::sync::OnceLock;

type Push = unsafe extern "C" fn(*const c_char) -> c_int;
type Pop = unsafe extern "C" fn() -> c_int;

/// The file names NVTX's C API ships under.
const LIBRARIES: [&str; 2] = ["libnvToolsExt.so.1", "libnvtx3interop.so.1"];

pub struct Nvtx {
    push: Push,
    pop: Pop,
    /// Where the library was found.
    pub path: String,
    // Kept open for as long as `push` and `pop` may be called (the whole process).
    _library: libloading::Library,
}

/// The NVTX library of this process, opened on first use; Err says where it was looked for.
pub fn get() -> Result<&'static Nvtx, &'static str> {
    static NVTX: OnceLock<Result<Nvtx, String>> = OnceLock::new();
    NVTX.get_or_init(open).as_ref().map_err(String::as_str)
}

fn open() -> Result<Nvtx, String> {
    open_first(&candidates())
}

/// INFERBENCH_NVTX_LIB alone when set, else the usual names and folders.
fn candidates() -> Vec<PathBuf> {
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(path) = std::env::var_os("INFERBENCH_NVTX_LIB") {
        candidates.push(path.into());
    } else {
        candidates.extend(LIBRARIES.iter().map(PathBuf::from));
        let homes = std::env::var_os("CUDA_HOME")
            .map(PathBuf::from)
            .into_iter()
            .chain([PathBuf::from("/usr/local/cuda")]);
        for home in homes {
            candidates.extend(LIBRARIES.iter().map(|l| home.join("lib64").join(l)));
        }
    }
    candidates
}

fn open_first(candidates: &[PathBuf]) -> Result<Nvtx, String> {
    for path in candidates {
        // SAFETY: loading runs the library's initialisers; NVTX's only set up its tables.
        let Ok(library) = (unsafe { libloading::Library::new(path) }) else {
            continue;
        };
        // SAFETY: the C API's signatures: int nvtxRangePushA(const char*), int nvtxRangePop().
        let symbols = unsafe {
            library
                .get::<Push>(b"nvtxRangePushA\0")
                .and_then(|push| Ok((*push, *library.get::<Pop>(b"nvtxRangePop\0")?)))
        };
        if let Ok((push, pop)) = symbols {
            return Ok(Nvtx {
                push,
                pop,
                path: path.display().to_string(),
                _library: library,
            });
        }
    }
    Err(format!(
        "no NVTX library found ({}; INFERBENCH_NVTX_LIB names one)",
        LIBRARIES.join(", ")
    ))
}

impl Nvtx {
    /// `f` inside a range named `name` on this thread.
    pub fn range<T>(&self, name: &str, f: impl FnOnce() -> T) -> T {
        let name = CString::new(name).unwrap_or_default();
        // SAFETY: `name` is a NUL-terminated string that outlives the call; push and pop pair.
        unsafe { (self.push)(name.as_ptr()) };
        let out = f();
        unsafe { (self.pop)() };
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_libraries_and_ones_without_nvtx_are_refused_with_the_way_out() {
        let libc = PathBuf::from("libc.so.6"); // loads, but has no nvtxRangePushA
        let err = open_first(&[PathBuf::from("/nonexistent/libnvToolsExt.so.1"), libc])
            .err()
            .expect("no NVTX library among them");
        assert!(err.contains("INFERBENCH_NVTX_LIB"), "{err}");
    }

    #[test]
    fn ranges_nest_around_the_work_when_a_library_is_named() {
        // Only where INFERBENCH_NVTX_LIB names a real library (e.g. PyPI's nvidia-nvtx-cu12).
        let Some(path) = std::env::var_os("INFERBENCH_NVTX_LIB") else {
            return;
        };
        let nvtx = open_first(&[PathBuf::from(path)]).expect("the named NVTX library");
        let inner = nvtx.range("outer", || nvtx.range("inner", || 7));
        assert_eq!(inner, 7);
    }
}
