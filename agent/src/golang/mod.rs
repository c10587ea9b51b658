//! Go executables, read in user space: the build info that says a binary is
//! Go (and which Go), the addresses of its functions (from `.symtab`, or from
//! the function table `.gopclntab` that stripped binaries keep), the return
//! instructions of a function (uprobes there, not uretprobes: Go moves
//! goroutine stacks, which a uretprobe's rewritten return address breaks), and
//! the struct offsets the crypto/tls probes follow to a connection's socket.
//! No kernel here: the eBPF side (`ebpf::libraries`) attaches what this finds.

mod buildinfo;
mod functions;
mod offsets;
mod returns;
#[cfg(test)]
mod tests;

use std::path::Path;

use object::{Object, ObjectSection, ReadRef};

pub use buildinfo::{BuildInfo, GoVersion};
pub use offsets::StructOffsets;

/// What is wrong with a Go executable we cannot probe.
#[derive(Debug, thiserror::Error)]
pub enum GoError {
    #[error("{path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: not an ELF file the agent can read: {source}")]
    Elf {
        path: String,
        source: object::read::Error,
    },
    #[error("{path}: {what}")]
    Malformed { path: String, what: String },
    #[error("{path}: built by {version}; Go TLS probes need Go 1.18 or newer (register ABI, this function table)")]
    TooOld { path: String, version: String },
    #[error("{path}: architecture {arch:?} has no Go probes")]
    Architecture {
        path: String,
        arch: object::Architecture,
    },
}

/// The machines whose Go register ABI the probes know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    X86_64,
    Aarch64,
}

/// A function of the binary, ready for uprobes: file offsets, as the kernel
/// takes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionProbes {
    pub name: &'static str,
    /// The first instruction.
    pub entry: u64,
    /// Every return instruction.
    pub returns: Vec<u64>,
}

/// A Go executable and where its probes go.
#[derive(Debug, Clone)]
pub struct GoBinary {
    pub build: BuildInfo,
    pub arch: Arch,
    /// Whether the functions came from `.symtab` (false: stripped, `.gopclntab`).
    pub has_symbols: bool,
    pub offsets: StructOffsets,
    /// The wanted functions the binary has, in the order asked for.
    pub functions: Vec<FunctionProbes>,
}

/// Reads `path`: Ok(None) when it is not a Go executable (no `.go.buildinfo`).
/// `wanted` are fully qualified Go function names (`crypto/tls.(*Conn).Read`);
/// the ones the binary lacks (not linked in) are left out.
pub fn inspect(path: &Path, wanted: &[&'static str]) -> Result<Option<GoBinary>, GoError> {
    let shown = path.display().to_string();
    let handle = std::fs::File::open(path).map_err(|source| GoError::Read {
        path: shown.clone(),
        source,
    })?;
    // Read on demand: every executable a selected process runs is looked at,
    // and reading a 100 MB one (node) whole only to find it is not Go cost the
    // agent 100 MB at its peak.
    let cache = object::ReadCache::new(handle);
    let file = object::File::parse(&cache).map_err(|source| GoError::Elf {
        path: shown.clone(),
        source,
    })?;
    let malformed = |what: String| GoError::Malformed {
        path: shown.clone(),
        what,
    };
    let Some(section) = file.section_by_name(".go.buildinfo") else {
        return Ok(None);
    };
    let build = buildinfo::parse(section.data().map_err(|e| malformed(e.to_string()))?)
        .map_err(|e| malformed(format!(".go.buildinfo: {e}")))?;
    if build.version.minor < 18 || build.version.major != 1 {
        return Err(GoError::TooOld {
            path: shown,
            version: build.version.to_string(),
        });
    }
    let arch = match file.architecture() {
        object::Architecture::X86_64 => Arch::X86_64,
        object::Architecture::Aarch64 => Arch::Aarch64,
        arch => return Err(GoError::Architecture { path: shown, arch }),
    };
    let (found, has_symbols) =
        functions::find(&file, wanted).map_err(|e| malformed(e.to_string()))?;
    let mut probes = Vec::new();
    for (name, range) in found {
        let code = code_at(&file, range.start, range.end - range.start).ok_or_else(|| {
            malformed(format!("{name} at {:#x} is outside the text", range.start))
        })?;
        let returns = returns::find(arch, range.start, code.bytes)
            .map_err(|e| malformed(format!("{name}: {e}")))?
            .into_iter()
            .map(|address| address - range.start + code.file_offset)
            .collect();
        probes.push(FunctionProbes {
            name,
            entry: code.file_offset,
            returns,
        });
    }
    Ok(Some(GoBinary {
        offsets: StructOffsets::for_version(build.version),
        build,
        arch,
        has_symbols,
        functions: probes,
    }))
}

/// A function's bytes and where they start in the file.
struct Code<'a> {
    bytes: &'a [u8],
    file_offset: u64,
}

fn code_at<'data, R: ReadRef<'data>>(
    file: &object::File<'data, R>,
    address: u64,
    size: u64,
) -> Option<Code<'data>> {
    file.sections().find_map(|s| {
        let within = address >= s.address() && address + size <= s.address() + s.size();
        if !within {
            return None;
        }
        let (offset, _) = s.file_range()?;
        let bytes = s.data_range(address, size).ok()??;
        Some(Code {
            bytes,
            file_offset: offset + (address - s.address()),
        })
    })
}
